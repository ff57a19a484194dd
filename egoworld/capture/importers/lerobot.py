"""LeRobot v3 datasets → sessions: one episode (or every episode) of a camera + state/action dataset.

Read directly with pyarrow and PyAV, following LeRobot v3.0's layout (``meta/info.json``,
``meta/episodes/*/*.parquet``, ``data/chunk-XXX/file-XXX.parquet``,
``videos/<key>/chunk-XXX/file-XXX.mp4``; files are found by sorted glob and concatenated). Several
episodes share one data file and one video file: an episode is the rows with its
``episode_index`` and the video frames at ``videos/<key>/from_timestamp + timestamp`` (within
LeRobot's 1e-4 s tolerance). The session's video keeps exactly those frames, with PTS = the
episode's ``timestamp`` column, so the camera clock is the episode's own time.

What maps to motion streams:

* a dataset written by ``egoworld episodes``/``egoworld export`` (``observation.state`` named
  ``head_px … right_wrist_qz``, ``observation.{left,right}_keypoints``): head pose and hands map back
  exactly (float32), rows flagged invalid (``head_valid``/``*_hand_valid``) or repeated for a
  dropped frame (``frame_dropped``) are left out, so the session has the gaps the original had;
* any other dataset: a robot's state is not a head pose, so nothing is guessed. ``--state-map
  head_pose=FEATURE[a:b]`` (7 values: px,py,pz + a quaternion, ``--quat-order``) or
  ``imu=FEATURE[a:b]`` (6 values: gyro rad/s, accel m/s²) says which columns are a head pose or an
  IMU; without one the import is refused (a session needs head motion to be synced).

Every numeric non-video feature of the episode (state, action, …) is also kept, unchanged, in
``motion/lerobot_state.parquet`` (listed under ``session.json["extra_streams"]``), stamped with
the frame times. Mapped streams are put on their own ``lerobot`` clock (stamped with frame times),
so sync checks the dataset's state↔frame pairing instead of assuming it.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from egoworld.capture.importers.common import (
    ImportFormatError,
    build_meta,
    check_finite,
    check_imu_units,
    check_times,
    consent_record,
    hands_table,
    head_pose_table,
    imu_table,
    intrinsics_from_hfov,
    load_camera_file,
    quat_wxyz,
    seconds_to_ns,
)
from egoworld.state import STATE_NAMES, body_pose

TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
MAP_WIDTH = {"head_pose": 7, "imu": 6}


@dataclass
class Dataset:
    """The parts of a LeRobot v3 dataset an import needs (paths resolved, nothing decoded)."""

    root: Path
    info: dict
    episodes: list[dict]
    tasks: list[str]

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.info["features"].items() if f.get("dtype") == "video"]

    @property
    def is_egoworld(self) -> bool:
        st = self.info["features"].get("observation.state", {})
        return list(st.get("names") or []) == STATE_NAMES


def _read_parquet(path: Path) -> pa.Table:
    if not path.exists():
        raise ImportFormatError(path, "file is missing")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ImportFormatError(path, f"not a readable parquet file ({e})") from e


def open_dataset(root: str | Path) -> Dataset:
    """Read and check ``meta/``: info.json (v3.0, fps, features, paths), episodes, tasks."""
    root = Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.exists():
        raise ImportFormatError(info_path, "missing: not a LeRobot v3 dataset root (expected meta/info.json)")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise ImportFormatError(info_path, f"not valid JSON ({e})") from e
    ver = str(info.get("codebase_version", ""))
    if not ver.startswith("v3"):
        raise ImportFormatError(info_path, f"codebase_version {ver!r}: only LeRobot v3.x datasets are supported "
                                           "(convert v2.1 with LeRobot's convert_dataset_v21_to_v30)")
    for k in ("fps", "features", "data_path"):
        if k not in info:
            raise ImportFormatError(info_path, f"missing key {k!r}")
    if not (isinstance(info["fps"], (int, float)) and info["fps"] > 0):
        raise ImportFormatError(info_path, f"fps must be a positive number, got {info['fps']!r}")
    ep_paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not ep_paths:
        raise ImportFormatError(root / "meta" / "episodes", "no episodes parquet (meta/episodes/chunk-*/file-*.parquet)")
    eps = pa.concat_tables([_read_parquet(p) for p in ep_paths], promote_options="default")
    need = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    missing = [c for c in need if c not in eps.column_names]
    if missing:
        raise ImportFormatError(ep_paths[0], f"missing episode columns {missing}")
    tasks: list[str] = []
    tp = root / "meta" / "tasks.parquet"
    if tp.exists():
        t = _read_parquet(tp)
        if "task" in t.column_names and "task_index" in t.column_names:
            order = np.argsort(t.column("task_index").to_numpy())
            names = t.column("task").to_pylist()
            tasks = [names[i] for i in order]
    return Dataset(root, info, eps.to_pylist(), tasks)


def parse_state_map(spec: list[str] | None) -> dict[str, tuple[str, int | None, int | None]]:
    """``head_pose=observation.state[0:7]`` / ``imu=observation.imu`` → {stream: (feature, start, stop)}."""
    out: dict[str, tuple[str, int | None, int | None]] = {}
    for item in spec or []:
        for part in filter(None, (p.strip() for p in item.split(","))):
            m = re.fullmatch(r"(\w+)=([^\[\]]+?)(?:\[(\d*):(\d*)\])?", part)
            if not m:
                raise ImportFormatError(Path("--state-map"), f"{part!r} is not STREAM=FEATURE[a:b]")
            stream, feat, a, b = m.groups()
            if stream not in MAP_WIDTH:
                raise ImportFormatError(Path("--state-map"), f"stream {stream!r} cannot be mapped (head_pose, imu)")
            out[stream] = (feat, int(a) if a else None, int(b) if b else None)
    return out


def _feature_array(table: pa.Table, name: str, path: Path) -> np.ndarray:
    """A feature column as (n, width) float64; list columns flattened."""
    if name not in table.column_names:
        raise ImportFormatError(path, f"has no column {name!r} (has {table.column_names})")
    col = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lengths = np.diff(col.offsets.to_numpy()) if not pa.types.is_fixed_size_list(col.type) else None
        if lengths is not None and len(set(lengths.tolist())) > 1:
            raise ImportFormatError(path, f"column {name!r} has rows of different lengths")
        flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
        return flat.reshape(len(col), -1)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(len(col), 1)


def _episode_rows(ds: Dataset, episode: int) -> tuple[dict, pa.Table, Path]:
    """The meta/episodes row and this episode's data rows (sorted by frame_index)."""
    row = next((e for e in ds.episodes if int(e["episode_index"]) == episode), None)
    if row is None:
        raise ImportFormatError(ds.root / "meta" / "episodes", f"has no episode {episode} "
                                                              f"(episodes {min(e['episode_index'] for e in ds.episodes)}…"
                                                              f"{max(e['episode_index'] for e in ds.episodes)})")
    path = ds.root / ds.info["data_path"].format(chunk_index=int(row["data/chunk_index"]), file_index=int(row["data/file_index"]))
    t = _read_parquet(path)
    for c in ("timestamp", "frame_index", "episode_index"):
        if c not in t.column_names:
            raise ImportFormatError(path, f"missing column {c!r}")
    mask = pc.equal(t.column("episode_index"), pa.scalar(episode, t.schema.field("episode_index").type))
    t = t.filter(mask)
    if t.num_rows == 0:
        raise ImportFormatError(path, f"has no rows of episode {episode}")
    t = t.sort_by("frame_index")
    if t.num_rows != int(row["length"]):
        raise ImportFormatError(path, f"episode {episode} has {t.num_rows} rows but meta/episodes says length {row['length']}")
    return row, t, path


def _frame_writer(video: Path, frame_times_s: np.ndarray, keep: np.ndarray, pts_ns: np.ndarray, fps: float
                  ) -> Callable[[Path], None]:
    """``write_video_fn``: decode ``video``, keep the frame that sits at each wanted time (±1e-4 s), write
    it with ``pts_ns``. A wanted time with no decoded frame is an error naming the file (LeRobot would
    fail on it too)."""
    import av

    from egoworld.video import VideoWriter, pts_to_ns

    want = np.round(np.asarray(frame_times_s)[keep] * 1e9).astype(np.int64)
    out_pts = np.asarray(pts_ns)[keep]
    tol_ns = int(TOLERANCE_S * 1e9)

    def write(dst: Path) -> None:
        try:
            c = av.open(str(video))
        except (av.error.FFmpegError, OSError) as e:
            raise ImportFormatError(video, f"not a readable video ({e})") from e
        writer = None
        got = np.zeros(len(want), bool)
        try:
            if not c.streams.video:
                raise ImportFormatError(video, "contains no video stream")
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            try:
                for frame in c.decode(s):
                    if frame.pts is None:
                        continue
                    t = pts_to_ns(frame.pts, frame.time_base)
                    if t > want[-1] + tol_ns:
                        break
                    k = int(np.searchsorted(want, t - tol_ns))
                    if k >= len(want) or abs(int(want[k]) - t) > tol_ns or got[k]:
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2
                    if writer is None:
                        writer = VideoWriter(dst, w, h, fps)
                    writer.write(rgb[:h, :w], int(out_pts[k]))
                    got[k] = True
            except av.error.FFmpegError as e:
                raise ImportFormatError(video, f"video does not decode ({e}) — unknown or broken codec") from e
            if not got.all():
                i = int(np.flatnonzero(~got)[0])
                raise ImportFormatError(video, f"no frame at {want[i] / 1e9:.6f} s (±{TOLERANCE_S} s) for row {i} of the episode; "
                                               f"{int((~got).sum())} frames missing — from_timestamp/timestamp do not match the video")
            writer.close(ok=True)
            writer = None
        finally:
            if writer is not None:
                writer.close(ok=False)
            c.close()

    return write


def _probe_codec(video: Path) -> dict:
    import av

    if not video.exists():
        raise ImportFormatError(video, "video file is missing")
    try:
        with av.open(str(video)) as c:
            if not c.streams.video:
                raise ImportFormatError(video, "contains no video stream")
            s = c.streams.video[0]
            name = s.codec_context.name if s.codec_context is not None else None
            if not name or name == "none":
                raise ImportFormatError(video, "video codec is unknown to FFmpeg/PyAV — transcode it first")
            try:
                av.codec.Codec(name, "r")
            except Exception as e:
                raise ImportFormatError(video, f"no decoder for codec {name!r} in this FFmpeg build") from e
            return {"codec": name, "width": s.codec_context.width, "height": s.codec_context.height}
    except (av.error.FFmpegError, OSError) as e:
        raise ImportFormatError(video, f"not a readable video ({e})") from e


def _camera(ds: Dataset, row: dict, width: int, height: int, camera_file: Path | None, hfov_deg: float | None) -> dict:
    if camera_file:
        return load_camera_file(Path(camera_file), width, height)
    fh = row.get("fov_h_deg")
    if hfov_deg is None and isinstance(fh, (int, float)) and np.isfinite(fh) and 1 < fh < 179:
        fv = row.get("fov_v_deg")
        fx = width / 2 / np.tan(np.radians(fh) / 2)
        fy = height / 2 / np.tan(np.radians(fv) / 2) if isinstance(fv, (int, float)) and np.isfinite(fv) and 1 < fv < 179 else fx
        return {"intrinsics": {"fx": fx, "fy": fy, "cx": width / 2, "cy": height / 2},
                "source": f"pinhole from the episode's fov_h_deg/fov_v_deg ({fh:.2f}°) in meta/episodes"}
    hf = hfov_deg or 90.0
    return {"intrinsics": intrinsics_from_hfov(width, height, hf),
            "source": f"assumed horizontal FOV {hf}° (pinhole): LeRobot datasets carry no intrinsics; pass --camera"}


def _extra_table(data: pa.Table, t_ns: np.ndarray, ds: Dataset) -> tuple[pa.Table, dict]:
    """Every numeric non-video, non-index feature of the episode, unchanged, stamped with frame times."""
    cols: dict[str, pa.Array] = {"t_ns": pa.array(t_ns, pa.int64())}
    names: dict[str, list | None] = {}
    for k, ft in ds.info["features"].items():
        if ft.get("dtype") in ("video", "image", "string") or k in INDEX_COLUMNS or k not in data.column_names:
            continue
        cols[k] = data.column(k).combine_chunks()
        names[k] = ft.get("names")
    return pa.table(cols), names


def _map_streams(ds: Dataset, data: pa.Table, data_path: Path, t_ns: np.ndarray, smap: dict, quat_order: str,
                 gyro_unit: str, accel_unit: str) -> dict[str, pa.Table]:
    """Generic dataset: the streams the user mapped with --state-map."""
    streams: dict[str, pa.Table] = {}
    for stream, (feat, a, b) in smap.items():
        if feat not in ds.info["features"]:
            raise ImportFormatError(ds.root / "meta" / "info.json", f"--state-map {stream}={feat}: no such feature "
                                                                     f"(features: {sorted(ds.info['features'])})")
        arr = _feature_array(data, feat, data_path)[:, slice(a, b)]
        if arr.shape[1] != MAP_WIDTH[stream]:
            raise ImportFormatError(data_path, f"--state-map {stream}={feat}[{a}:{b}] gives {arr.shape[1]} values per row, "
                                               f"{stream} needs {MAP_WIDTH[stream]}")
        arr = check_finite(arr, data_path, f"{feat} ({stream})")
        if stream == "head_pose":
            q = arr[:, 3:7] if quat_order == "wxyz" else arr[:, [6, 3, 4, 5]]
            streams["head_pose"] = head_pose_table(t_ns, arr[:, :3], quat_wxyz(q, data_path, f"{feat} quaternion ({quat_order})"))
        else:
            gyro = arr[:, :3] * (np.pi / 180 if gyro_unit == "deg/s" else 1.0)
            acc = arr[:, 3:6] * (9.80665 if accel_unit == "g" else 1.0)
            check_imu_units(gyro, acc, data_path)
            streams["imu"] = imu_table(t_ns, gyro, acc)
    return streams


def _egoworld_streams(data: pa.Table, data_path: Path, t_ns: np.ndarray) -> tuple[dict[str, pa.Table], dict]:
    """A dataset written by egoworld: head pose and hands back from the state/keypoint columns."""
    state = check_finite(_feature_array(data, "observation.state", data_path), data_path, "observation.state")

    def flag(name: str) -> np.ndarray:
        if name not in data.column_names:
            return np.ones(data.num_rows, bool)
        return np.asarray(data.column(name).to_numpy(zero_copy_only=False), dtype=bool)

    real = ~flag("frame_dropped") if "frame_dropped" in data.column_names else np.ones(data.num_rows, bool)
    streams: dict[str, pa.Table] = {}
    head = real & flag("head_valid")
    if head.any():
        pose = body_pose(state[head])
        streams["head_pose"] = head_pose_table(t_ns[head], pose.head_p, quat_wxyz(pose.head_q, data_path, "head quaternion"))
    rows = []
    for i, side in enumerate(("left", "right")):
        ok = real & flag(f"{side}_hand_valid")
        key = f"observation.{side}_keypoints"
        if not ok.any() or key not in data.column_names:
            continue
        kp = check_finite(_feature_array(data, key, data_path), data_path, key)[ok].reshape(-1, 21, 3)
        pose = body_pose(state[ok])
        q = quat_wxyz(pose.wrist_q[:, i], data_path, f"{side} wrist quaternion")
        rows.append((t_ns[ok], side, pose.wrist_p[:, i], q, kp))
    if rows:
        streams["hands"] = hands_table(rows)
    kept = {"frames_dropped_in_store": int((~real).sum()), "head_rows": int(head.sum())}
    return streams, kept


def _consent(arg: str | None, row: dict, tmp_dir: Path) -> tuple[dict | None, str]:
    """--consent wins; else a consent record the dataset carries per episode (egoworld's ``consent_json``)."""
    if arg is not None or not row.get("consent_json"):
        return consent_record(arg, subject_id=str(row.get("subject_id") or "unknown"))
    rec = json.loads(row["consent_json"])
    from egoworld.session import SessionError, validate_consent

    try:
        validate_consent(rec, tmp_dir)
    except SessionError as e:
        raise ImportFormatError(tmp_dir, f"episode's consent_json is not a valid consent record: {e.problem}") from e
    rec.setdefault("notes", "carried over from the dataset's meta/episodes consent_json")
    return rec, "dataset"


def import_lerobot(root: str | Path, out: str | Path, episode: int = 0, camera_key: str | None = None,
                   state_map: dict | None = None, quat_order: str = "wxyz", gyro_unit: str = "rad/s",
                   accel_unit: str = "m/s2", consent: str | None = None, camera_file: str | Path | None = None,
                   hfov_deg: float | None = None, session_id: str | None = None, _ds: Dataset | None = None) -> Path:
    """One episode of the LeRobot v3 dataset at ``root`` → the session folder ``out`` (written atomically)."""
    from egoworld.session import write_session

    if quat_order not in ("wxyz", "xyzw"):
        raise ImportFormatError(Path("--quat-order"), f"{quat_order!r}: use wxyz or xyzw")
    ds = _ds or open_dataset(root)
    info_path = ds.root / "meta" / "info.json"
    row, data, data_path = _episode_rows(ds, episode)
    keys = ds.video_keys
    if not keys:
        raise ImportFormatError(info_path, "has no video feature: a session needs a camera")
    key = camera_key or ("observation.images.head" if "observation.images.head" in keys else (keys[0] if len(keys) == 1 else None))
    if key is None:
        raise ImportFormatError(info_path, f"has several cameras {keys}: choose one with --camera-key")
    if key not in keys:
        raise ImportFormatError(info_path, f"no video feature {key!r} (cameras: {keys})")
    for c in (f"videos/{key}/chunk_index", f"videos/{key}/file_index", f"videos/{key}/from_timestamp"):
        if c not in row:
            raise ImportFormatError(ds.root / "meta" / "episodes", f"missing column {c!r}")
    if not ds.info.get("video_path"):
        raise ImportFormatError(info_path, "video_path is null but there are video features")
    video = ds.root / ds.info["video_path"].format(video_key=key, chunk_index=int(row[f"videos/{key}/chunk_index"]),
                                                   file_index=int(row[f"videos/{key}/file_index"]))
    vinfo = _probe_codec(video)

    ts = np.asarray(data.column("timestamp").to_numpy(zero_copy_only=False), dtype=np.float64)
    t_ns = check_times(seconds_to_ns(ts, data_path, "timestamp"), data_path, f"episode {episode} timestamp")
    frame_times = float(row[f"videos/{key}/from_timestamp"]) + ts
    to_ts = row.get(f"videos/{key}/to_timestamp")
    if to_ts is not None and frame_times[-1] > float(to_ts) + TOLERANCE_S:
        raise ImportFormatError(data_path, f"episode {episode} runs to {frame_times[-1]:.4f} s in {video.name}, past its "
                                           f"to_timestamp {float(to_ts):.4f} s")

    extra_tab, extra_names = _extra_table(data, t_ns, ds)
    kept: dict = {}
    if ds.is_egoworld and not state_map:
        streams, kept = _egoworld_streams(data, data_path, t_ns)
        mapping = "egoworld dataset: head pose and wrists from observation.state, keypoints from observation.*_keypoints"
    else:
        streams = _map_streams(ds, data, data_path, t_ns, state_map or {}, quat_order, gyro_unit, accel_unit)
        mapping = ", ".join(f"{k}={v[0]}[{'' if v[1] is None else v[1]}:{'' if v[2] is None else v[2]}]"
                            for k, v in (state_map or {}).items())
    if not any(s in streams for s in ("head_pose", "imu")):
        feats = [k for k, f in ds.info["features"].items() if f.get("dtype") not in ("video", "image") and k not in INDEX_COLUMNS]
        raise ImportFormatError(info_path, "no head motion: a robot's state/action is not a head pose. Map columns that are "
                                           "with --state-map head_pose=FEATURE[a:b] (px,py,pz + quaternion, --quat-order) or "
                                           f"imu=FEATURE[a:b] (gyro rad/s, accel m/s²); numeric features here: {feats}")
    # frames to keep: all rows (dropped-frame repeats of an egoworld store are skipped)
    keep = np.ones(len(ts), bool)
    if ds.is_egoworld and "frame_dropped" in data.column_names:
        keep = ~np.asarray(data.column("frame_dropped").to_numpy(zero_copy_only=False), dtype=bool)
    fps = ds.fps
    w, h = vinfo["width"] - vinfo["width"] % 2, vinfo["height"] - vinfo["height"] % 2
    cam = _camera(ds, row, w, h, Path(camera_file) if camera_file else None, hfov_deg)
    tasks = list(row.get("tasks") or [])
    task_text = tasks[0] if tasks else (ds.tasks[int(data.column("task_index")[0].as_py())] if ds.tasks and "task_index" in data.column_names else None)
    task = {"id": str(row.get("task_id") or re.sub(r"[^A-Za-z0-9_.-]+", "_", task_text or "unknown")),
            "description": task_text or ""}
    sid = session_id or f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', ds.root.name)}_ep{episode:06d}"
    consent_rec, status = _consent(consent, row, ds.root / "meta" / "episodes")
    clock = "lerobot"
    rates = {}
    for n, tb in streams.items():
        u = np.unique(tb.column("t_ns").to_numpy())  # hands: one row per side per sample
        rates[n] = round(float(1e9 / np.median(np.diff(u))), 3) if len(u) > 1 else fps
    meta = build_meta(
        session_id=sid, source="lerobot", fps=fps, width=w, height=h,
        duration_s=float((t_ns[keep][-1] - t_ns[keep][0]) * 1e-9 + 1 / fps), camera=cam,
        streams={n: {"file": f"motion/{n}.parquet", "clock": clock, "rate_hz": rates[n]} for n in streams},
        clocks={clock: {"device": f"LeRobot dataset {ds.root.name} ({ds.info.get('robot_type')})",
                        "description": "the episode's frame timestamps, as the dataset pairs state rows with frames"}},
        consent_status=status, task=task,
        rig_extra={"source_codec": vinfo["codec"], "camera_key": key},
        provenance={"dataset": str(ds.root), "episode_index": int(episode), "data_file": str(data_path), "video_file": str(video),
                    "from_timestamp": float(row[f"videos/{key}/from_timestamp"]), "robot_type": ds.info.get("robot_type"),
                    "codebase_version": ds.info.get("codebase_version"), "mapping": mapping, **kept,
                    "source_session_id": row.get("session_id")},
        notes=f"LeRobot episode {episode}; mapped: {mapping or 'nothing'}; all numeric features in motion/lerobot_state.parquet",
    )
    meta["extra_streams"] = {"lerobot_state": {"file": "motion/lerobot_state.parquet", "clock": "camera",
                                               "columns": extra_names,
                                               "description": "every numeric non-video feature of the episode, unchanged"}}
    return write_session(out, meta, consent_rec, streams, _frame_writer(video, frame_times, keep, t_ns, fps),
                         extra={"motion/lerobot_state.parquet": extra_tab})


def import_lerobot_all(root: str | Path, out_dir: str | Path, **kw) -> list[Path]:
    """Every episode → ``out_dir/<dataset>_ep<NNNNNN>``. All episodes' tables are checked before the first
    session is written; each session is then written atomically (a video error on episode k leaves the
    complete sessions before it, and names episode k)."""
    ds = open_dataset(root)
    episodes = sorted(int(e["episode_index"]) for e in ds.episodes)
    for ep in episodes:  # cheap table checks first: a bad row anywhere stops the batch before any write
        _, data, path = _episode_rows(ds, ep)
        ts = np.asarray(data.column("timestamp").to_numpy(zero_copy_only=False), dtype=np.float64)
        check_times(seconds_to_ns(ts, path, "timestamp"), path, f"episode {ep} timestamp")
    out_dir = Path(out_dir)
    paths = []
    for ep in episodes:
        sid = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', ds.root.name)}_ep{ep:06d}"
        try:
            paths.append(import_lerobot(ds.root, out_dir / sid, episode=ep, session_id=sid, _ds=ds, **kw))
        except ImportFormatError as e:
            raise ImportFormatError(e.path, f"episode {ep}: {e.problem} ({len(paths)} earlier episodes written)") from e
    return paths
