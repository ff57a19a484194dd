"""Fixtures for the LeRobot, Aria hand-tracking and phone sensor-logger importers.

Like build.py, each builder writes a format in its published layout from a synthetic session with
known clocks, and returns what the importer should give back (the streams, and the clock offset
sync should find). The LeRobot robot dataset is written by hand following LeRobot v3.0 (several
episodes concatenated in one data file and one video file, so from_timestamp > 0 is exercised);
tests check it with egoworld.dataset.check (LeRobot 0.4.4's loader, re-done).
"""
from __future__ import annotations

import json
import zipfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial.transform import Rotation as R

from egoworld.session import open_session
from egoworld.video import read_video
from tests.fixtures_import.build import R_CN, _pose_at, truth

ROBOT_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes it: index 'task' (the text), column task_index."""
    t = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "task": pa.array(tasks)})
    meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    pq.write_table(t.replace_schema_metadata({b"pandas": json.dumps(meta).encode()}), path)


def robot_dataset(session: Path, root: Path, episodes: int = 3, lag_s: float = 0.0, codec: str = "libx264") -> dict:
    """A LeRobot v3 dataset of ``episodes`` episodes cut from the session's video, back to back in ONE data
    file and ONE mp4 (``chunk-000/file-000``), with a 6-joint robot ``observation.state``/``action`` and
    an ``observation.pose`` feature [x, y, z, qx, qy, qz, qw] (scalar last, as robotics code writes it)
    = the head pose at frame time + ``lag_s`` (a pairing error sync must see: offset −lag)."""
    s = open_session(session)
    frames, pts = read_video(Path(session) / "video.mp4")
    fps = round(s.fps)
    n_all = len(frames) - len(frames) % episodes
    n = n_all // episodes
    root.mkdir(parents=True)
    for d in ("meta/episodes/chunk-000", "data/chunk-000", "videos/observation.images.front/chunk-000"):
        (root / d).mkdir(parents=True)
    off = truth(session)["head_pose"]["offset_ms"] * 1e-3
    rng = np.random.default_rng(5)
    rows, ep_rows, out = [], [], {"episodes": []}
    video = root / "videos/observation.images.front/chunk-000/file-000.mp4"
    with av.open(str(video), "w") as c:
        st = c.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        st.time_base = st.codec_context.time_base = Fraction(1, 15360)
        st.options = {"bframes": "0"} if codec == "libx264" else {}
        for i in range(n_all):
            vf = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            vf.pts, vf.time_base = int(round(i * 15360 / fps)), Fraction(1, 15360)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    for e in range(episodes):
        idx = np.arange(e * n, (e + 1) * n)
        t_stream = pts[idx] * 1e-9 + off + lag_s  # the pose at each frame's true time (+ lag)
        p, r = _pose_at(session, t_stream)
        pose = np.c_[p, r.as_quat()]  # x, y, z, qx, qy, qz, qw
        state = rng.normal(size=(n, 6)).cumsum(0).astype(np.float32)
        action = np.r_[state[1:], state[-1:]]
        ts = (np.arange(n) / fps).astype(np.float32)
        rows.append(pa.table({
            "observation.state": pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), 6),
            "action": pa.FixedSizeListArray.from_arrays(pa.array(action.ravel()), 6),
            "observation.pose": pa.FixedSizeListArray.from_arrays(pa.array(pose.astype(np.float32).ravel()), 7),
            "timestamp": pa.array(ts), "frame_index": pa.array(np.arange(n, dtype=np.int64)),
            "episode_index": pa.array(np.full(n, e, np.int64)), "index": pa.array(np.arange(e * n, (e + 1) * n, dtype=np.int64)),
            "task_index": pa.array(np.full(n, e % 2, np.int64))}))
        ep_rows.append({"episode_index": e, "tasks": [["pick the cube", "open the drawer"][e % 2]], "length": n,
                        "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": e * n, "dataset_to_index": (e + 1) * n,
                        "videos/observation.images.front/chunk_index": 0, "videos/observation.images.front/file_index": 0,
                        "videos/observation.images.front/from_timestamp": e * n / fps,
                        "videos/observation.images.front/to_timestamp": (e + 1) * n / fps,
                        "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        out["episodes"].append({"state": state, "action": action, "pose": pose, "frames": frames[idx], "ts": ts})
    pq.write_table(pa.concat_tables(rows), root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist(ep_rows), root / "meta/episodes/chunk-000/file-000.parquet")
    _write_tasks(root / "meta/tasks.parquet", ["pick the cube", "open the drawer"])
    scalar = lambda d: {"dtype": d, "shape": [1], "names": None}
    feats = {
        "observation.images.front": {"dtype": "video", "shape": [frames.shape[1], frames.shape[2], 3],
                                     "names": ["height", "width", "channels"],
                                     "info": {"video.height": frames.shape[1], "video.width": frames.shape[2],
                                              "video.codec": "h264", "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                              "video.fps": fps, "video.channels": 3, "has_audio": False}},
        "observation.state": {"dtype": "float32", "shape": [6], "names": ROBOT_JOINTS},
        "action": {"dtype": "float32", "shape": [6], "names": ROBOT_JOINTS},
        "observation.pose": {"dtype": "float32", "shape": [7], "names": ["x", "y", "z", "qx", "qy", "qz", "qw"]},
        "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
        "index": scalar("int64"), "task_index": scalar("int64")}
    def stat(v: np.ndarray) -> dict:
        return {"min": v.min(0).tolist(), "max": v.max(0).tolist(), "mean": v.mean(0).tolist(), "std": v.std(0).tolist(),
                "count": [len(v)]}
    eps = out["episodes"]
    stats = {k: stat(np.concatenate([e[f] for e in eps]).astype(np.float64)) for k, f in
             (("observation.state", "state"), ("action", "action"), ("observation.pose", "pose"))}
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        stats[k] = {"min": [0.0], "max": [float(n_all)], "mean": [0.0], "std": [1.0], "count": [n_all]}
    px = np.concatenate([e["frames"][::10].reshape(-1, 3) for e in eps]) / 255.0
    stats["observation.images.front"] = {k: [[[x]] for x in v] if k != "count" else v for k, v in stat(px).items()}
    (root / "meta/stats.json").write_text(json.dumps(stats))
    (root / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "robot_type": "so100_follower", "total_episodes": episodes, "total_frames": n_all,
        "total_tasks": 2, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
        "splits": {"train": f"0:{episodes}"}, "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", "features": feats}, indent=1))
    out.update({"root": root, "fps": fps, "n": n, "expected_offset_ms": -lag_s * 1e3})
    return out


def egoworld_store(sessions: list[Path], data: Path) -> Path:
    """Our own pipeline: sync each session, then ``egoworld episodes`` → a LeRobot v3 store under data/episodes."""
    import shutil

    from egoworld.dataset.build import build_store
    from egoworld.sync import sync_session

    data.mkdir(parents=True)
    for s in sessions:
        shutil.copytree(s, data / s.name)
        sync_session(data / s.name, data / "aligned")
    return build_store(data, workers=1).store


# ---------------------------------------------------------------- Aria MPS hand tracking

# MPS landmark index (HandLandmark enum) for each of our 21 keypoints; None = not in MPS (thumb CMC).
MPS_FOR_OURS = [5, None, 6, 7, 0, 8, 9, 10, 1, 11, 12, 13, 2, 14, 15, 16, 3, 17, 18, 19, 4]


def aria_hands(session: Path, mps_dir: Path, start_us: int, R_dc: R, t_dc: np.ndarray, landmarks: bool = True,
               lost: dict | None = None) -> dict:
    """``hand_tracking/hand_tracking_results.csv`` (landmarks) or ``wrist_and_palm_poses.csv`` in the MPS
    layout, from the session's hands (world frame) moved into the Aria *device* frame with the same
    trajectory aria_mps wrote (T_world_device = T_world_rgb · T_rgb_device). ``lost``: {side: rows}
    where that hand is untracked (confidence −1, zeros), which the importer must leave out."""
    a = open_session(session).arrays("hands")
    m = a["side"] == "left"
    t_ns = a["t_ns"][m]  # left and right share stamps in the synthetic session
    assert np.array_equal(t_ns, a["t_ns"][~m])
    p_wc, r_wc = _pose_at(session, t_ns * 1e-9)  # head-tracker clock: same device as the hands
    r_wd = r_wc * R_dc.inv()
    p_wd = p_wc - r_wd.apply(t_dc)
    hands = {side: a["keypoints"][a["side"] == side] for side in ("left", "right")}
    t_us = np.round(t_ns / 1000).astype(np.int64) + start_us
    lost = lost or {}
    cols: dict[str, np.ndarray] = {"tracking_timestamp_us": t_us}
    dev = {}
    for side in ("left", "right"):
        kp = hands[side]
        d = np.stack([r_wd.inv().apply(kp[:, j] - p_wd) for j in range(21)], 1)  # device frame
        dev[side] = d
        conf = np.full(len(t_us), 0.98)
        conf[lost.get(side, [])] = -1.0
        cols[f"{side}_conf"] = conf
    hdir = mps_dir / "hand_tracking"
    hdir.mkdir(parents=True, exist_ok=True)
    if landmarks:
        header = ["tracking_timestamp_us"]
        data = [t_us.astype(np.float64)]
        for side in ("left", "right"):
            header.append(f"{side}_tracking_confidence")
            data.append(cols[f"{side}_conf"])
            mps = np.zeros((len(t_us), 21, 3))
            for ours, k in enumerate(MPS_FOR_OURS):
                if k is not None:
                    mps[:, k] = dev[side][:, ours]
            palm = dev[side][:, [0, 5, 9, 13, 17]].mean(1)
            mps[:, 20] = palm
            mps[cols[f"{side}_conf"] < 0] = 0.0
            for k in range(21):
                for ax, c in enumerate("xyz"):
                    header.append(f"t{c}_{side}_landmark_{k}_device")
                    data.append(mps[:, k, ax])
        for side in ("left", "right"):  # T_device_wrist (MPS's own wrist axes; we rebuild ours from landmarks)
            for c in ("tx", "ty", "tz"):
                header.append(f"{c}_{side}_device_wrist")
                data.append(dev[side][:, 0, "xyz".index(c[1])])
            for c, v in zip(("qx", "qy", "qz", "qw"), (0.0, 0.0, 0.0, 1.0)):
                header.append(f"{c}_{side}_device_wrist")
                data.append(np.full(len(t_us), v))
        for side in ("left", "right"):
            for part in ("palm", "wrist"):
                for c in "xyz":
                    header.append(f"n{c}_{side}_{part}_device")
                    data.append(np.full(len(t_us), 0.0 if c != "z" else 1.0))
        path = hdir / "hand_tracking_results.csv"
    else:
        header, data = ["tracking_timestamp_us"], [t_us.astype(np.float64)]
        normals = {}
        for side in ("left", "right"):
            kp = dev[side]
            palm = kp[:, [0, 5, 9, 13, 17]].mean(1)
            # palm normal: out of the palm = −(our z, out of the back of the hand)
            from egoworld.capture.importers.common import wrist_frame_from_keypoints

            q = wrist_frame_from_keypoints(kp.copy(), side)
            z = R.from_quat(q, scalar_first=True).apply([0, 0, 1.0])
            normals[side] = (-z, -z)
            header += [f"{side}_tracking_confidence", f"tx_{side}_wrist_device", f"ty_{side}_wrist_device", f"tz_{side}_wrist_device",
                       f"tx_{side}_palm_device", f"ty_{side}_palm_device", f"tz_{side}_palm_device"]
            data += [cols[f"{side}_conf"], *kp[:, 0].T, *palm.T]
        for side in ("left", "right"):
            for part, v in zip(("palm", "wrist"), normals[side]):
                header += [f"n{c}_{side}_{part}_device" for c in "xyz"]
                data += list(v.T)
        path = hdir / "wrist_and_palm_poses.csv"
    arr = np.stack(data, 1)
    lines = [",".join(header)] + [",".join([str(int(r[0]))] + [f"{v:.9g}" for v in r[1:]]) for r in arr]
    path.write_text("\n".join(lines) + "\n")
    return {"path": path, "t_ns": t_ns, "hands": hands, "lost": lost}


# ---------------------------------------------------------------- phone sensor logger


def sensor_logger(session: Path, dst_dir: Path, epoch_ns: int = 1_712_345_678_901_234_567, accel_every: int = 2,
                  zipped: bool = False) -> dict:
    """A Sensor Logger (Android/iOS app) export: ``Gyroscope.csv`` and ``Accelerometer.csv`` with header
    ``time,seconds_elapsed,z,y,x`` (time = ns since the epoch), device axes = Gyroflow's normalised axes
    (x right, y up, z out of the screen = backward for the rear camera). The gyro keeps the session's
    own IMU sample times (jittered, with drops); the accelerometer runs at 1/``accel_every`` of the rate
    and starts later, as the two sensors do on a phone. ``zipped`` also writes the app's zip of both."""
    s = open_session(session)
    a = s.arrays("imu")
    t = a["t_ns"]
    gyro = np.c_[a["gx"], a["gy"], a["gz"]] @ R_CN  # camera axes → device (normalised) axes
    acc = np.c_[a["ax"], a["ay"], a["az"]] @ R_CN
    dst_dir.mkdir(parents=True, exist_ok=True)
    t0 = int(t[0])

    def write(name: str, idx: np.ndarray, v: np.ndarray) -> Path:
        lines = ["time,seconds_elapsed,z,y,x"]
        for i in idx:
            tt = epoch_ns + int(t[i]) - t0
            lines.append(f"{tt},{(int(t[i]) - t0) / 1e9:.9f},{v[i, 2]:.9f},{v[i, 1]:.9f},{v[i, 0]:.9f}")
        p = dst_dir / name
        p.write_text("\n".join(lines) + "\n")
        return p

    gi = np.arange(len(t))
    ai = np.arange(3, len(t), accel_every)
    g = write("Gyroscope.csv", gi, gyro)
    ac = write("Accelerometer.csv", ai, acc)
    (dst_dir / "Metadata.csv").write_text("device name,platform,appVersion\nPixel 7,android,1.30.0\n")
    out = {"dir": dst_dir, "gyro_csv": g, "accel_csv": ac, "t_ns": t - t0, "gyro": gyro, "accel": acc, "accel_idx": ai,
           "epoch_ns": epoch_ns, "expected_offset_ms": truth(session)["imu"]["offset_ms"] - t0 / 1e6}
    if zipped:
        z = dst_dir.with_suffix(".zip")
        with zipfile.ZipFile(z, "w") as zf:
            for p in (g, ac, dst_dir / "Metadata.csv"):
                zf.write(p, p.name)
        out["zip"] = z
    return out
