"""A LeRobot-v3 layout check that follows LeRobot's loader step by step.

LeRobot itself cannot be installed beside torch 2.13 here (lerobot 0.4 pins torch < 2.11), so this
re-does what ``LeRobotDataset(root=...)`` does on open and on ``__getitem__`` (v0.4.4:
``datasets/utils.py`` ``load_info``/``load_tasks``/``load_episodes``/``load_nested_dataset``/
``get_hf_features_from_features``, ``lerobot_dataset.py`` ``_query_videos``), and reports every
place where it would fail, instead of stopping at the first.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld.dataset import layout as L

REQUIRED_INFO = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
                 "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features")
DEFAULT_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                    "task_index": "int64"}
TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s


def _hf_type(ft: dict) -> pa.DataType | None:
    """What ``datasets`` makes of a feature (get_hf_features_from_features → arrow)."""
    if ft["dtype"] in ("video", "image"):
        return None
    return L.arrow_type(ft)


def check_store(root: str | Path, decode_videos: bool = True) -> list[str]:
    """Every LeRobot-compatibility problem of the store at ``root`` (empty list: it loads)."""
    root = Path(root)
    problems: list[str] = []
    info_path = root / L.INFO_PATH
    if not info_path.exists():
        return [f"{info_path}: missing"]
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        return [f"{info_path}: not JSON ({e})"]
    for k in REQUIRED_INFO:
        if k not in info:
            problems.append(f"info.json: missing key {k!r}")
    if problems:
        return problems
    if info["codebase_version"] != L.CODEBASE_VERSION:
        problems.append(f"info.json: codebase_version {info['codebase_version']!r} (LeRobot v0.4 needs 'v3.0')")
    if not (isinstance(info["fps"], int) and info["fps"] > 0):
        problems.append(f"info.json: fps must be a positive int, got {info['fps']!r}")
    feats = info["features"]
    for k, ft in feats.items():
        for f in ("dtype", "shape", "names"):
            if f not in ft:
                problems.append(f"info.json: feature {k!r} lacks {f!r}")
    for k, dt in DEFAULT_FEATURES.items():
        if k not in feats or feats[k].get("dtype") != dt or list(feats[k].get("shape", [])) != [1]:
            problems.append(f"info.json: feature {k!r} must be {dt} shape [1]")
    video_keys = [k for k, ft in feats.items() if ft.get("dtype") == "video"]
    for k in video_keys:
        if len(feats[k]["shape"]) != 3 or "info" not in feats[k]:
            problems.append(f"info.json: video feature {k!r} needs a 3-D shape and an 'info' block")
    if video_keys and not info["video_path"]:
        problems.append("info.json: video features but video_path is null")
    if problems:
        return problems
    fps = info["fps"]

    # tasks.parquet: pd.read_parquet → index named 'task', column task_index
    tp = root / L.TASKS_PATH
    tasks: list[str] = []
    try:
        t = pq.read_table(tp)
        pmeta = json.loads((t.schema.metadata or {}).get(b"pandas", b"{}"))
        # the pandas index is the task text (tasks.iloc[i].name); its name does not matter to pandas
        # (ours is 'task', LeRobot's split/delete leave it unnamed)
        index = pmeta.get("index_columns") or []
        if len(index) != 1 or not isinstance(index[0], str) or index[0] not in t.column_names:
            problems.append(f"{tp}: pandas index must be one column holding the task texts (tasks.iloc[i].name is the task text)")
        name = L.task_column(t)
        if set(t.column_names) != {"task_index", name}:
            problems.append(f"{tp}: columns {t.column_names}, expected task_index + the task index column")
        ti = t.column("task_index").to_numpy()
        if not np.array_equal(ti, np.arange(len(ti))):
            problems.append(f"{tp}: row i must have task_index i")
        tasks = t.column(name).to_pylist()
        if len(tasks) != info["total_tasks"]:
            problems.append(f"{tp}: {len(tasks)} tasks, info.total_tasks = {info['total_tasks']}")
    except (OSError, pa.ArrowException, KeyError) as e:
        problems.append(f"{tp}: unreadable ({e})")

    # episodes: sorted glob, concatenated, 'stats/' columns dropped
    ep_paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not ep_paths:
        return problems + [f"{root / 'meta/episodes'}: no parquet file"]
    try:
        eps = pa.concat_tables([pq.read_table(p) for p in ep_paths], promote_options="default").to_pylist()
    except (OSError, pa.ArrowException) as e:
        return problems + [f"meta/episodes: unreadable ({e})"]
    need = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
            "dataset_to_index"]
    for k in video_keys:
        need += [f"videos/{k}/chunk_index", f"videos/{k}/file_index", f"videos/{k}/from_timestamp", f"videos/{k}/to_timestamp"]
    missing = [c for c in need if eps and c not in eps[0]]
    if missing:
        return problems + [f"meta/episodes: missing columns {missing}"]
    if len(eps) != info["total_episodes"]:
        problems.append(f"meta/episodes: {len(eps)} rows, info.total_episodes = {info['total_episodes']}")
    expect_from, data_missing = 0, False
    for i, e in enumerate(eps):
        if e["episode_index"] != i:
            problems.append(f"meta/episodes: row {i} has episode_index {e['episode_index']}")
        if e["dataset_from_index"] != expect_from or e["dataset_to_index"] - e["dataset_from_index"] != e["length"]:
            problems.append(f"meta/episodes: episode {i} rows [{e['dataset_from_index']}, {e['dataset_to_index']}) "
                            f"not back to back / not its length {e['length']}")
        expect_from = e["dataset_to_index"]
        if not all(t in tasks for t in e["tasks"]):
            problems.append(f"meta/episodes: episode {i} tasks {e['tasks']} not in tasks.parquet")
        dp = root / info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        if not dp.exists():
            problems.append(f"{dp}: missing (episode {i})")
            data_missing = True
        for k in video_keys:
            vp = root / info["video_path"].format(video_key=k, chunk_index=e[f"videos/{k}/chunk_index"],
                                                  file_index=e[f"videos/{k}/file_index"])
            if not vp.exists():
                problems.append(f"{vp}: missing (episode {i})")
    if expect_from != info["total_frames"]:
        problems.append(f"meta/episodes: {expect_from} frames in all, info.total_frames = {info['total_frames']}")

    if data_missing:  # the rows of the missing files cannot be checked against meta/episodes
        return problems

    # data: sorted glob, concatenated, cast to the features
    data_paths = sorted((root / "data").glob("*/*.parquet"))
    if not data_paths:
        return problems + [f"{root / 'data'}: no parquet file"]
    expected_cols = {k: _hf_type(ft) for k, ft in feats.items() if _hf_type(ft) is not None}
    tables, n_before = [], len(problems)
    for p in data_paths:
        try:
            t = pq.read_table(p)
        except (OSError, pa.ArrowException) as e:
            problems.append(f"{p}: unreadable ({e})")
            continue
        if set(t.column_names) != set(expected_cols):
            problems.append(f"{p}: columns differ from the non-video features "
                            f"(extra {sorted(set(t.column_names) - set(expected_cols))}, "
                            f"missing {sorted(set(expected_cols) - set(t.column_names))})")
            continue
        for c, typ in expected_cols.items():
            got = t.schema.field(c).type
            if got != typ and not (pa.types.is_fixed_size_list(typ) and pa.types.is_list(got)):
                problems.append(f"{p}: column {c!r} is {got}, the feature says {typ}")
        tables.append(t.select(list(expected_cols)))
    if len(problems) > n_before:
        return problems
    data = pa.concat_tables(tables)
    index = data.column("index").to_numpy()
    if not np.array_equal(index, np.arange(len(index))):
        problems.append("data: 'index' must run 0..N-1 across files in sorted order")
    ep_col = data.column("episode_index").to_numpy()
    fi = data.column("frame_index").to_numpy()
    ts = data.column("timestamp").to_numpy().astype(np.float64)
    task_idx = data.column("task_index").to_numpy()
    if len(tasks) and (task_idx.min() < 0 or task_idx.max() >= len(tasks)):
        problems.append("data: task_index out of range of tasks.parquet")
    for e in eps:
        a, b = e["dataset_from_index"], e["dataset_to_index"]
        if not np.all(ep_col[a:b] == e["episode_index"]):
            problems.append(f"data: rows [{a}, {b}) are not all episode {e['episode_index']}")
            continue
        if not np.array_equal(fi[a:b], np.arange(b - a)):
            problems.append(f"data: episode {e['episode_index']} frame_index is not 0..length-1")
        if np.max(np.abs(ts[a:b] - fi[a:b] / fps)) > TOLERANCE_S:
            problems.append(f"data: episode {e['episode_index']} timestamp ≠ frame_index / fps (beyond {TOLERANCE_S} s)")
        for k in video_keys:
            vp = root / info["video_path"].format(video_key=k, chunk_index=e[f"videos/{k}/chunk_index"],
                                                  file_index=e[f"videos/{k}/file_index"])
            if not vp.exists():
                continue
            frm = e[f"videos/{k}/from_timestamp"]
            if abs((e[f"videos/{k}/to_timestamp"] - frm) - e["length"] / fps) > TOLERANCE_S:
                problems.append(f"meta/episodes: episode {e['episode_index']} video span ≠ length / fps")
            if decode_videos:
                problems += _check_video(vp, feats[k], frm + ts[a:b], e["episode_index"])
    stats_path = root / L.STATS_PATH
    if stats_path.exists():
        stats = json.loads(stats_path.read_text())
        for k, s in stats.items():
            if k not in feats:
                problems.append(f"stats.json: {k!r} is not a feature")
                continue
            for f in ("min", "max", "mean", "std", "count"):
                if f not in s:
                    problems.append(f"stats.json: {k!r} lacks {f!r}")
            want = [3, 1, 1] if feats[k]["dtype"] == "video" else list(feats[k]["shape"])
            if "mean" in s and list(np.asarray(s["mean"]).shape) != want:
                problems.append(f"stats.json: {k!r} mean has shape {list(np.asarray(s['mean']).shape)}, expected {want}")
    return problems


def _check_video(path: Path, ft: dict, query_ts: np.ndarray, ep: int) -> list[str]:
    """Every query timestamp must land within tolerance of a frame; the frame size must match."""
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            h, w = s.codec_context.height, s.codec_context.width
            tb = Fraction(s.time_base)
            pts = np.array(sorted(float(p.pts * tb) for p in c.demux(s) if p.pts is not None))
    except (av.error.FFmpegError, OSError) as e:
        return [f"{path}: unreadable video ({e})"]
    out = []
    if [h, w] != list(ft["shape"][:2]):
        out.append(f"{path}: frames are {h}×{w}, the feature says {ft['shape'][:2]}")
    if len(pts) == 0:
        return out + [f"{path}: no frames"]
    j = np.clip(np.searchsorted(pts, query_ts), 1, len(pts) - 1)
    err = np.minimum(np.abs(pts[j] - query_ts), np.abs(pts[j - 1] - query_ts))
    if np.any(err > TOLERANCE_S):
        out.append(f"{path}: episode {ep}: {int(np.sum(err > TOLERANCE_S))} query timestamps have no frame within "
                   f"{TOLERANCE_S} s (worst {err.max():.4g} s)")
    return out
