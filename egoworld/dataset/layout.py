"""The LeRobot v3.0 layout of the episode store: paths, features, and the files LeRobot reads.

Everything here follows LeRobot's own loader (``lerobot/datasets/utils.py`` and
``lerobot_dataset.py``, v0.4): ``LeRobotDataset(root=...)`` reads ``meta/info.json``,
``meta/tasks.parquet`` (pandas index named ``task``), ``meta/episodes/*/*.parquet``,
``meta/stats.json`` and ``data/*/*.parquet`` (sorted glob, concatenated), and decodes
``videos/<key>/chunk-XXX/file-XXX.mp4`` at ``from_timestamp + timestamp``. Our own files live
under ``meta/egoworld/`` where LeRobot never looks.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from egoworld._atomic import write_parquet
from egoworld.actions import ACTION_DIM, action_names
from egoworld.state import STATE_DIM, STATE_NAMES

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
OURS = "meta/egoworld"  # our own metadata: sessions.json, splits.json, exports.json, revocations.json, runs.json
SESSIONS_PATH = OURS + "/sessions.json"
SPLITS_PATH = OURS + "/splits.json"
EXPORTS_PATH = OURS + "/exports.json"
REVOCATIONS_PATH = OURS + "/revocations.json"
EXPORT_RECORD_PATH = OURS + "/export.json"
RUNS_PATH = OURS + "/runs.json"
# The store's trail: who got copies and who withdrew consent. A rebuild carries these over.
TRAIL_PATHS = (EXPORTS_PATH, REVOCATIONS_PATH, RUNS_PATH)

VIDEO_KEY = "observation.images.head"
KEYPOINT_NAMES = [f"kp{i:02d}_{a}" for i in range(21) for a in "xyz"]
LABEL_FEATURES = ("next.reward", "next.done", "next.success")
# An object tracker's report, when the capture has one (the simulator's; a real rig's object tracker):
# the task's object and where it should go, world frame like observation.state (NaN: not tracked).
OBJECTS_KEY = "observation.objects"
OBJECT_NAMES = [f"{p}_{c}" for p in ("object", "goal") for c in "xyz"]
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's DEFAULT_QUANTILES → q01 … q99


def data_file(episode_index: int) -> tuple[int, int]:
    """(chunk_index, file_index) of an episode: one data file and one video file per episode."""
    return episode_index // CHUNKS_SIZE, episode_index % CHUNKS_SIZE


def data_path(episode_index: int) -> str:
    c, f = data_file(episode_index)
    return DATA_PATH.format(chunk_index=c, file_index=f)


def video_path(episode_index: int, key: str = VIDEO_KEY) -> str:
    c, f = data_file(episode_index)
    return VIDEO_PATH.format(video_key=key, chunk_index=c, file_index=f)


def _scalar(dtype: str) -> dict:
    return {"dtype": dtype, "shape": [1], "names": None}


def features(height: int, width: int, fps: float, with_labels: bool, with_objects: bool = False) -> dict:
    """The ``features`` block of info.json; the data parquet columns are exactly the non-video ones."""
    feats: dict[str, dict] = {
        VIDEO_KEY: {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                     "video.is_depth_map": False, "video.fps": int(round(fps)), "video.channels": 3, "has_audio": False},
        },
        "observation.state": {"dtype": "float32", "shape": [STATE_DIM], "names": STATE_NAMES},
        "observation.left_keypoints": {"dtype": "float32", "shape": [63], "names": KEYPOINT_NAMES},
        "observation.right_keypoints": {"dtype": "float32", "shape": [63], "names": KEYPOINT_NAMES},
        "action": {"dtype": "float32", "shape": [ACTION_DIM], "names": action_names()},
        "action_valid": _scalar("bool"),
        "head_valid": _scalar("bool"),
        "left_hand_valid": _scalar("bool"),
        "right_hand_valid": _scalar("bool"),
        "frame_dropped": _scalar("bool"),
        "sync_residual": _scalar("float32"),
        "t_video_ns": _scalar("int64"),
    }
    if with_objects:
        feats[OBJECTS_KEY] = {"dtype": "float32", "shape": [len(OBJECT_NAMES)], "names": OBJECT_NAMES}
    if with_labels:
        feats["next.reward"] = _scalar("float32")
        feats["next.done"] = _scalar("bool")
        feats["next.success"] = _scalar("bool")
    for k in ("timestamp",):
        feats[k] = _scalar("float32")
    for k in ("frame_index", "episode_index", "index", "task_index"):
        feats[k] = _scalar("int64")
    return feats


def arrow_type(feature: dict) -> pa.DataType:
    """The Arrow type LeRobot's ``get_hf_features_from_features`` expects for a non-video feature."""
    scalar = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(),
              "string": pa.string()}[feature["dtype"]]
    shape = list(feature["shape"])
    if shape == [1]:
        return scalar
    if len(shape) == 1:
        return pa.list_(scalar, shape[0])
    raise ValueError(f"unsupported feature shape {shape}")


def info_json(fps: float, feats: dict, total_episodes: int, total_frames: int, total_tasks: int,
              extra: dict | None = None) -> dict:
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": "egocentric_human",
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": timeline_fps(fps),
        "splits": {"train": f"0:{total_episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": feats,
    }
    if extra:
        info.update(extra)
    return info


def write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes ``DataFrame({"task_index": …}, index=Index(tasks, name="task"))``.

    LeRobot reads it with ``pd.read_parquet`` and looks a task up with ``tasks.iloc[i].name``, so the
    task text must come back as the index: that is what the ``pandas`` schema metadata says.
    """
    table = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    write_parquet(path, table)


def task_column(table: pa.Table) -> str:
    """The column of tasks.parquet that holds the task texts: the pandas index, whatever its name.

    We write it as ``task``; LeRobot's ``split_dataset`` / ``delete_episodes`` write it unnamed
    (``__index_level_0__``), and LeRobot reads either through pandas.
    """
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str) and c in table.column_names]
    if len(index) == 1:
        return index[0]
    if "task" in table.column_names:
        return "task"
    raise KeyError("no 'task' column and no pandas index holding the task texts")


def read_tasks(path: Path) -> list[str]:
    """Task texts in task_index order (the inverse of ``write_tasks``)."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    order = np.argsort(t.column("task_index").to_numpy())
    names = t.column(task_column(t)).to_pylist()
    return [names[i] for i in order]


def feature_stats(values: np.ndarray) -> dict:
    """LeRobot's per-feature stats (min, max, mean, std, count, q01…q99) over axis 0."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if len(v) == 0:
        z = np.zeros(v.shape[1])
        out = {"min": z, "max": z, "mean": z, "std": z, "count": np.array([0])}
        out.update({f"q{int(q * 100):02d}": z for q in QUANTILES})
    else:
        out = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0), "count": np.array([len(v)])}
        qs = np.quantile(v, QUANTILES, axis=0)
        out.update({f"q{int(q * 100):02d}": qs[i] for i, q in enumerate(QUANTILES)})
    return {k: np.asarray(x).tolist() for k, x in out.items()}


def timeline_fps(fps: float) -> int:
    """The store's frame rate as LeRobot states it (an integer): a 29.97 fps camera's frames are
    stored one per slot at 30 fps, so ``timestamp = frame_index / fps`` holds in data and video
    (the timeline runs 0.1 % fast; the session's own rate stays in its metadata)."""
    return int(round(fps))
