"""Project Aria: a VRS recording (through projectaria-tools) and/or MPS outputs (their published CSV/JSON).

**VRS** (``.vrs``, read with ``projectaria_tools.core.data_provider``): the RGB frames, the
right IMU (1 kHz) and the factory calibration. Every Aria sensor is stamped by one device clock
(``capture_timestamp_ns``, DEVICE_TIME), so the video PTS, the IMU and any MPS output are put on
the ``camera`` clock with the same origin (the first RGB frame): nothing to estimate.
projectaria-tools declares a pin on an old rerun-sdk that clashes with egoworld's viewer, so it is
installed without its dependencies (``pip install --no-deps projectaria-tools``; its reader needs
only numpy).

**MPS** (read directly with the published column names): ``closed_loop_trajectory.csv``
(``tracking_timestamp_us``, ``tx/ty/tz_world_device``, ``qx/qy/qz/qw_world_device``,
``quality_score`` …; under ``slam/`` or ``trajectory/``) and ``online_calibration.jsonl`` (one
JSON per line; the ``camera-rgb`` entry of ``CameraCalibrations`` gives ``T_Device_Camera``
{``Translation``, ``UnitQuaternion`` [w, [x, y, z]]} and ``Projection`` {``Name``, ``Params``
[f, cx, cy, k0…]}). Hands: ``hand_tracking_results[_v2|_v1].csv`` (21 landmarks per hand) or
``wrist_and_palm_poses[_v2].csv``, in the device frame at their own ``tracking_timestamp_us``,
moved into the world with the trajectory interpolated at those times (SLERP). See
``read_mps_hands`` / ``read_hands`` for what maps and what is filled.

head_pose = T_world_device · T_device_rgb (the RGB camera in MPS's gravity-aligned world, z up).
With an MP4 (no VRS) it is stamped on a ``tracker`` clock: device time (µs → ns) minus
``video_start_us`` — the device time of the MP4's first frame, which an MP4 export does not
carry; without it the trajectory's first sample is taken as the video start and sync measures
the remaining offset (±1 s).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
    probe_source_video,
    quat_wxyz,
    session_id_for,
    video_copier,
    wrist_frame_from_keypoints,
)

TRAJ_COLUMNS = ("tracking_timestamp_us", "tx_world_device", "ty_world_device", "tz_world_device",
                "qx_world_device", "qy_world_device", "qz_world_device", "qw_world_device")


def read_trajectory(path: Path) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if not path.exists():
        raise ImportFormatError(path, "closed_loop_trajectory.csv is missing")
    try:
        t = pcsv.read_csv(path)
    except (pa.ArrowException, OSError) as e:
        raise ImportFormatError(path, f"not a readable CSV ({e})") from e
    missing = [c for c in TRAJ_COLUMNS if c not in t.column_names]
    if missing:
        raise ImportFormatError(path, f"missing MPS trajectory columns {missing}")
    return {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names if c in TRAJ_COLUMNS or c == "quality_score"}


def rgb_calibration(path: Path) -> dict:
    """T_device_rgb (4×4) and the RGB projection from the first line of online_calibration.jsonl."""
    if not path.exists():
        raise ImportFormatError(path, "online_calibration.jsonl is missing")
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ImportFormatError(path, f"line {i + 1} is not JSON ({e})") from e
        for cam in rec.get("CameraCalibrations", []):
            if cam.get("Label") == "camera-rgb":
                tr = cam["T_Device_Camera"]
                w, xyz = tr["UnitQuaternion"]
                from scipy.spatial.transform import Rotation

                T = np.eye(4)
                T[:3, :3] = Rotation.from_quat([w, *xyz], scalar_first=True).as_matrix()
                T[:3, 3] = tr["Translation"]
                return {"T_device_camera": T, "projection": cam.get("Projection", {})}
        break
    raise ImportFormatError(path, "no 'camera-rgb' entry in CameraCalibrations of the first record")


# MPS HandLandmark index for each of our 21 keypoints (wrist, thumb cmc/mcp/ip/tip, index…little
# mcp/pip/dip/tip). MPS: 0-4 fingertips (thumb…pinky), 5 wrist, 6-7 thumb intermediate/distal,
# 8-10 index proximal/intermediate/distal, 11-13 middle, 14-16 ring, 17-19 pinky, 20 palm centre.
# The thumb CMC has no MPS landmark (None): it is filled, see read_hands.
MPS_LANDMARK_FOR_OURS = (5, None, 6, 7, 0, 8, 9, 10, 1, 11, 12, 13, 2, 14, 15, 16, 3, 17, 18, 19, 4)
THUMB_CMC_FRACTION = 0.5  # the filled thumb CMC: this far along wrist → thumb MCP


def _csv_columns(path: Path) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        t = pcsv.read_csv(path)
    except (pa.ArrowException, OSError) as e:
        raise ImportFormatError(path, f"not a readable CSV ({e})") from e
    return {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}


HAND_FILES = ("hand_tracking_results_v2.csv", "hand_tracking_results.csv", "hand_tracking_results_v1.csv",
              "wrist_and_palm_poses_v2.csv", "wrist_and_palm_poses.csv")


def find_mps_file(mps: Path, names: tuple[str, ...], folders: tuple[str, ...]) -> Path | None:
    """The first of ``names`` found in ``mps`` or one of its sub-folders (MPS layouts differ by version)."""
    for name in names:
        for sub in (*folders, ""):
            p = mps / sub / name if sub else mps / name
            if p.exists():
                return p
    return None


def _us_times(cols: dict, path: Path) -> np.ndarray:
    if "tracking_timestamp_us" not in cols:
        raise ImportFormatError(path, "missing column 'tracking_timestamp_us'")
    t_us = np.asarray(cols["tracking_timestamp_us"])
    if not np.issubdtype(t_us.dtype, np.integer):
        raise ImportFormatError(path, "tracking_timestamp_us must be integer microseconds")
    if np.any(np.abs(t_us) > (2**63 - 1) // 1000):
        raise ImportFormatError(path, "tracking_timestamp_us overflows int64 nanoseconds (wrong unit?)")
    check_times(t_us.astype(np.int64) * 1000, path, "tracking_timestamp_us")
    return t_us.astype(np.int64)


def read_mps_hands(path: Path) -> dict:
    """One MPS hand-tracking CSV, in the device frame: {"kind", "t_us", "sides": {side: arrays}}.

    ``hand_tracking_results*.csv``: per side ``conf`` and ``landmarks`` (n, 21, 3) in MPS order.
    ``wrist_and_palm_poses*.csv``: per side ``conf``, ``wrist``, ``palm`` and, from MPS v2 on,
    ``palm_normal`` (None in v1 files). A confidence ≤ 0 (MPS writes −1) means the hand was not seen.
    """
    cols = _csv_columns(path)
    t_us = _us_times(cols, path)
    landmarks = path.name.startswith("hand_tracking_results")
    sides = {}
    for side in ("left", "right"):
        need = [f"{side}_tracking_confidence"]
        need += ([f"t{a}_{side}_landmark_{k}_device" for k in range(21) for a in "xyz"] if landmarks else
                 [f"t{a}_{side}_{p}_device" for p in ("wrist", "palm") for a in "xyz"])
        missing = [c for c in need if c not in cols]
        if missing:
            raise ImportFormatError(path, f"missing MPS hand-tracking columns {missing[:6]}{' …' if len(missing) > 6 else ''}")
        d = {"conf": np.asarray(cols[f"{side}_tracking_confidence"], dtype=np.float64)}
        if landmarks:
            kp = np.stack([np.c_[[cols[f"t{a}_{side}_landmark_{k}_device"] for a in "xyz"]].T for k in range(21)], 1)
            d["landmarks"] = check_finite(kp.reshape(len(t_us), -1), path, f"{side} landmarks").reshape(-1, 21, 3)
        else:
            for part in ("wrist", "palm"):
                d[part] = check_finite(np.c_[[cols[f"t{a}_{side}_{part}_device"] for a in "xyz"]].T, path, f"{side} {part}")
            normal = [f"n{a}_{side}_palm_device" for a in "xyz"]
            d["palm_normal"] = (check_finite(np.c_[[cols[c] for c in normal]].T, path, f"{side} palm normal")
                                if all(c in cols for c in normal) else None)
        sides[side] = d
    return {"kind": "landmarks" if landmarks else "wrist_palm", "t_us": t_us, "sides": sides}


def _wrist_frame(x_dev: np.ndarray, z_dev: np.ndarray | None, rw) -> np.ndarray:
    """Wrist orientation (wxyz, world) from x = wrist → palm and z = −palm normal (device frame); without
    a normal (MPS v1) z is the device's −y (roughly the back of a hand held in view): approximate."""
    from scipy.spatial.transform import Rotation

    x = rw.apply(x_dev)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = -rw.apply(z_dev) if z_dev is not None else rw.apply(np.tile([0.0, -1.0, 0.0], (len(x_dev), 1)))
    z -= np.sum(z * x, axis=1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y = np.cross(z, x)
    q = Rotation.from_matrix(np.stack([x, y, z], axis=2)).as_quat(scalar_first=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


def read_hands(mps: Path, traj_t_us: np.ndarray, p_wd: np.ndarray, q_wd: np.ndarray, start_us: int) -> tuple:
    """MPS hand tracking → (hands table or None, source path, what was filled).

    The first file of ``HAND_FILES`` whose samples fall inside the trajectory's time span is used
    (an MPS folder may hold hand files of another recording). Landmark files: the 21 MPS landmarks
    map to ours (MPS_LANDMARK_FOR_OURS); the thumb CMC, which MPS does not track, is filled at
    THUMB_CMC_FRACTION of wrist → thumb MCP; the wrist orientation is rebuilt from the landmarks in
    our convention. Wrist-and-palm files (no landmarks): the wrist keypoint is the MPS wrist, the
    wrist frame is x = wrist → palm, z = −palm normal, y = z × x; the other 20 keypoints are
    *unknown* and set to the wrist position (``rig.hands_keypoints = "wrist_only"``). A side with
    confidence ≤ 0 is left out at that time: a gap, not zeros. Device → world with the trajectory
    SLERPed at the hand times; hand samples outside the trajectory's time span are dropped.
    """
    from scipy.spatial.transform import Rotation, Slerp

    skipped = []
    for name in HAND_FILES:
        path = find_mps_file(mps, (name,), ("hand_tracking",))
        if path is None:
            continue
        h = read_mps_hands(path)
        t_us = h["t_us"]
        inside = (t_us >= traj_t_us[0]) & (t_us <= traj_t_us[-1])
        if not inside.any():
            skipped.append(f"{path.name}: no sample inside the trajectory's time span (another recording)")
            continue
        break
    else:
        if skipped:
            raise ImportFormatError(mps, "no hand-tracking file matches the trajectory: " + "; ".join(skipped))
        return None, None, None
    r_wd = Slerp(traj_t_us.astype(np.float64), Rotation.from_quat(q_wd, scalar_first=True))(t_us[inside].astype(np.float64))
    p = np.stack([np.interp(t_us[inside], traj_t_us, p_wd[:, i]) for i in range(3)], 1)
    rows = []
    for side, d in h["sides"].items():
        ok = d["conf"][inside] > 0
        if not ok.any():
            continue
        if h["kind"] == "landmarks":
            mps_kp = d["landmarks"][inside]
            kp_dev = np.zeros((len(mps_kp), 21, 3))
            for ours, k in enumerate(MPS_LANDMARK_FOR_OURS):
                if k is not None:
                    kp_dev[:, ours] = mps_kp[:, k]
            kp_dev[:, 1] = kp_dev[:, 0] + THUMB_CMC_FRACTION * (kp_dev[:, 2] - kp_dev[:, 0])
        else:
            kp_dev = np.repeat(d["wrist"][inside][:, None, :], 21, axis=1)
        kp = (np.einsum("nij,nkj->nki", r_wd.as_matrix(), kp_dev) + p[:, None, :])[ok]
        if h["kind"] == "landmarks":
            q = wrist_frame_from_keypoints(kp.copy(), side)
        else:
            normal = None if d["palm_normal"] is None else d["palm_normal"][inside][ok]
            q = _wrist_frame((d["palm"] - d["wrist"])[inside][ok], normal, r_wd[np.flatnonzero(ok)])
        t_ns = (t_us[inside][ok] - start_us) * 1000
        rows.append((t_ns, side, kp[:, 0], q, kp))
    if not rows:
        return None, path, None
    if h["kind"] == "landmarks":
        filled = f"thumb_cmc filled at {THUMB_CMC_FRACTION} of wrist→thumb MCP (MPS has no CMC landmark)"
    else:
        filled = ("wrist_only: MPS wrist_and_palm_poses has no finger landmarks; the 20 non-wrist keypoints are set to the wrist"
                  + ("" if h["sides"]["left"]["palm_normal"] is not None else
                     "; no palm normal (MPS v1): the rotation about wrist→palm is approximate (device −y)"))
    if skipped:
        filled += " [skipped " + "; ".join(skipped) + "]"
    return hands_table(rows), path, filled


def _camera_from_projection(name: str, params: list[float], source: str, path: Path) -> dict:
    """Our camera dict from an Aria projection (f, cx, cy, radial k0…): the first four radial terms as an
    OpenCV fisheye (the tangential and thin-prism terms are dropped), a pinhole otherwise."""
    if len(params) < 3:
        raise ImportFormatError(path, "camera-rgb projection has no params [f, cx, cy, …]")
    f, cx, cy = (float(x) for x in params[:3])
    fisheye = "fisheye" in name.lower()
    return {"intrinsics": {"fx": f, "fy": f, "cx": cx, "cy": cy},
            "camera_model": "opencv_fisheye" if fisheye else "pinhole",
            "distortion": ([float(x) for x in params[3:7]] + [0.0] * 4)[:4] + [0.0] if fisheye else [0.0] * 5,
            "assumed": False, "source": f"{source}: {name} (first 4 radial terms as OpenCV fisheye)"}


def read_vrs(path: Path, rgb_label: str = "camera-rgb", imu_label: str = "imu-right") -> dict:
    """RGB frame times, IMU samples and calibration of an Aria VRS file (device clock, ns).

    Frames are not decoded here (``vrs_video_writer`` does that while writing the session).
    """
    if not path.exists():
        raise ImportFormatError(path, "VRS file is missing")
    try:
        from projectaria_tools.core import data_provider
        from projectaria_tools.core.sensor_data import TimeDomain
    except ImportError as e:
        raise ImportFormatError(path, "reading VRS needs projectaria-tools: pip install --no-deps projectaria-tools "
                                      "(its declared dependencies pin an old rerun-sdk)") from e
    provider = data_provider.create_vrs_data_provider(str(path))
    if provider is None:
        raise ImportFormatError(path, "projectaria-tools cannot open it as an Aria VRS recording")
    labels = {provider.get_label_from_stream_id(s): s for s in provider.get_all_streams()}
    for label in (rgb_label, imu_label):
        if label not in labels:
            raise ImportFormatError(path, f"no '{label}' stream (has {sorted(labels)})")
    rgb, imu = labels[rgb_label], labels[imu_label]
    t_rgb = np.asarray(provider.get_timestamps_ns(rgb, TimeDomain.DEVICE_TIME), dtype=np.int64)
    n = provider.get_num_data(imu)
    samples = [provider.get_imu_data_by_index(imu, i) for i in range(n)]
    t_imu = np.array([x.capture_timestamp_ns for x in samples], dtype=np.int64)
    gyro = np.array([x.gyro_radsec for x in samples], dtype=np.float64)
    accel = np.array([x.accel_msec2 for x in samples], dtype=np.float64)
    calib = provider.get_device_calibration()
    cam = calib.get_camera_calib(rgb_label)
    T_dc = np.asarray(cam.get_transform_device_camera().to_matrix(), dtype=np.float64)
    T_di = np.asarray(calib.get_imu_calib(imu_label).get_transform_device_imu().to_matrix(), dtype=np.float64)
    w, h = (int(x) for x in cam.get_image_size())
    return {"provider": provider, "rgb": rgb, "t_rgb_ns": check_times(t_rgb, path, f"{rgb_label} timestamps"),
            "t_imu_ns": check_times(t_imu, path, f"{imu_label} timestamps"), "gyro": check_finite(gyro, path, "gyro"),
            "accel": check_finite(accel, path, "accel"), "T_device_camera": T_dc, "T_device_imu": T_di,
            "width": w, "height": h,
            "camera": _camera_from_projection(str(cam.get_model_name()).split(".")[-1], list(cam.get_projection_params() if hasattr(cam, "get_projection_params") else cam.projection_params()),
                                              f"{path.name} factory calibration", path)}


def vrs_video_writer(vrs: dict, t0_ns: int, fps: float, path: Path):
    """A ``write_video_fn``: the RGB frames of the VRS, PTS = device time − ``t0_ns``."""
    from egoworld.video import VideoWriter

    def write(dst: Path) -> None:
        writer = None
        try:
            for i, t in enumerate(vrs["t_rgb_ns"]):
                img = vrs["provider"].get_image_data_by_index(vrs["rgb"], i)[0].to_numpy_array()
                if img.ndim == 2:
                    img = np.repeat(img[..., None], 3, axis=2)
                h, w = img.shape[0] - img.shape[0] % 2, img.shape[1] - img.shape[1] % 2
                if writer is None:
                    writer = VideoWriter(dst, w, h, fps)
                writer.write(np.ascontiguousarray(img[:h, :w, :3]), int(t - t0_ns))
            if writer is None:
                raise ImportFormatError(path, "no RGB frames")
            writer.close(ok=True)
            writer = None
        finally:
            if writer is not None:
                writer.close(ok=False)

    return write


def _mps_head_pose(mps: Path, start_us: int | None) -> dict:
    """Trajectory + online calibration of an MPS folder → RGB camera poses (world) and the raw arrays."""
    from scipy.spatial.transform import Rotation

    traj_path = find_mps_file(mps, ("closed_loop_trajectory.csv",), ("slam", "trajectory")) or mps / "slam" / "closed_loop_trajectory.csv"
    calib_path = find_mps_file(mps, ("online_calibration.jsonl",), ("slam", "trajectory")) or mps / "slam" / "online_calibration.jsonl"
    tr = read_trajectory(traj_path)
    calib = rgb_calibration(calib_path)
    t_us = _us_times(tr, traj_path)
    start = int(t_us[0]) if start_us is None else int(start_us)
    p_wd = check_finite(np.c_[tr["tx_world_device"], tr["ty_world_device"], tr["tz_world_device"]], traj_path, "position")
    q_wd = quat_wxyz(np.c_[tr["qw_world_device"], tr["qx_world_device"], tr["qy_world_device"], tr["qz_world_device"]], traj_path)
    T_dc = calib["T_device_camera"]
    R_wd = Rotation.from_quat(q_wd, scalar_first=True)
    R_wc = R_wd * Rotation.from_matrix(T_dc[:3, :3])
    q = R_wc.as_quat(scalar_first=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return {"traj_path": traj_path, "calib_path": calib_path, "calib": calib, "t_us": t_us, "start_us": start,
            "t_ns": (t_us - start) * 1000, "p_wd": p_wd, "q_wd": q_wd, "p_wc": p_wd + R_wd.apply(T_dc[:3, 3]), "q_wc": q}


def import_aria(src: str | Path, out: str | Path, mps: str | Path | None = None, consent: str | None = None,
                video_start_us: int | None = None, session_id: str | None = None) -> Path:
    """An Aria VRS (+ optional MPS folder), or an RGB MP4 + an MPS folder → a session."""
    src = Path(src)
    mps = Path(mps) if mps is not None else None
    if src.suffix.lower() == ".vrs":
        return _import_vrs(src, out, mps, consent, session_id)
    if mps is None:
        raise ImportFormatError(src, "an MP4 needs its MPS folder (--mps): the trajectory is the only motion stream")
    video = probe_source_video(src)
    hp = _mps_head_pose(mps, video_start_us)
    t_ns = check_times(hp["t_ns"], hp["traj_path"], "tracking_timestamp_us")
    w, h, fps = video["width"], video["height"], video["fps"] or 30.0
    projection = hp["calib"]["projection"]
    cam = _camera_from_projection(str(projection.get("Name", "")), list(projection.get("Params", [])),
                                  hp["calib_path"].name, hp["calib_path"])
    hands, hands_path, hands_filled = read_hands(mps, hp["t_us"], hp["p_wd"], hp["q_wd"], hp["start_us"])
    streams = {"head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker",
                             "rate_hz": round(1e9 / float(np.median(np.diff(t_ns))), 3)}}
    tables = {"head_pose": head_pose_table(t_ns, hp["p_wc"], hp["q_wc"])}
    _add_hands(streams, tables, hands, "tracker")
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="aria", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam,
        streams=streams,
        clocks={"tracker": {"device": "Aria MPS SLAM", "description": f"device time − {hp['start_us']} µs"}},
        consent_status=consent_record(consent, subject_id="unknown")[1],
        provenance={"video": str(src), "trajectory": str(hp["traj_path"]), "calibration": str(hp["calib_path"]),
                    "video_start_us": hp["start_us"], "video_start_stated": video_start_us is not None,
                    "hands": str(hands_path) if hands_path else None},
        rig_extra=_hands_rig(hands, hands_filled),
        notes="head_pose is the RGB camera pose (T_world_device · T_device_rgb)",
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_record(consent, subject_id="unknown")[0], tables, video_copier(src, fps))


def _add_hands(streams: dict, tables: dict, hands, clock: str) -> None:
    if hands is None:
        return
    u = np.unique(hands.column("t_ns").to_numpy())
    streams["hands"] = {"file": "motion/hands.parquet", "clock": clock,
                        "rate_hz": round(1e9 / float(np.median(np.diff(u))), 3) if len(u) > 1 else 0.0}
    tables["hands"] = hands


def _hands_rig(hands, filled: str | None) -> dict:
    return {"hands_keypoints": None if hands is None else ("wrist_only" if "wrist_only" in (filled or "") else "landmarks"),
            "hands_filled": filled}


def _import_vrs(src: Path, out: str | Path, mps: Path | None, consent: str | None, session_id: str | None) -> Path:
    """VRS (+ MPS): every stream on the device clock, which is the video's: the ``camera`` clock."""
    vrs = read_vrs(src)
    t0 = int(vrs["t_rgb_ns"][0])
    t_rgb = vrs["t_rgb_ns"] - t0
    fps = float(1e9 / np.median(np.diff(t_rgb))) if len(t_rgb) > 1 else 20.0
    T_ci = np.linalg.inv(vrs["T_device_camera"]) @ vrs["T_device_imu"]
    t_imu = vrs["t_imu_ns"] - t0
    check_imu_units(vrs["gyro"], vrs["accel"], src)
    streams = {"imu": {"file": "motion/imu.parquet", "clock": "camera",
                       "rate_hz": round(1e9 / float(np.median(np.diff(t_imu))), 3)}}
    tables = {"imu": imu_table(t_imu, vrs["gyro"], vrs["accel"])}
    prov = {"vrs": str(src), "device_time_of_first_frame_ns": t0, "imu_stream": "imu-right",
            "clock": "every stream is stamped by the glasses' one device clock (DEVICE_TIME)"}
    hands_rig: dict = {}
    if mps is not None:
        prov["mps"] = str(mps)
        traj = find_mps_file(mps, ("closed_loop_trajectory.csv",), ("slam", "trajectory"))
        if traj is None:
            prov["mps_used"] = "no trajectory in the MPS folder (only " + ", ".join(
                sorted(p.relative_to(mps).as_posix() for p in mps.rglob("*") if p.is_file())) + ")"
        else:
            hp = _mps_head_pose(mps, t0 // 1000)
            inside = (hp["t_ns"] >= t_rgb[0]) & (hp["t_ns"] <= t_rgb[-1])
            if not inside.any():
                raise ImportFormatError(traj, f"the trajectory's device times ({hp['t_us'][0]}–{hp['t_us'][-1]} µs) do not "
                                              f"overlap the VRS frames ({vrs['t_rgb_ns'][0] // 1000}–{vrs['t_rgb_ns'][-1] // 1000} µs): "
                                              "not the same recording")
            streams["head_pose"] = {"file": "motion/head_pose.parquet", "clock": "camera",
                                    "rate_hz": round(1e9 / float(np.median(np.diff(hp["t_ns"]))), 3)}
            tables["head_pose"] = head_pose_table(check_times(hp["t_ns"], traj), hp["p_wc"], hp["q_wc"])
            hands, hands_path, filled = read_hands(mps, hp["t_us"], hp["p_wd"], hp["q_wd"], hp["start_us"])
            _add_hands(streams, tables, hands, "camera")
            hands_rig = _hands_rig(hands, filled)
            prov.update({"trajectory": str(traj), "hands": str(hands_path) if hands_path else None})
    consent_rec, status = consent_record(consent, subject_id="unknown")
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="aria", fps=fps, width=vrs["width"] - vrs["width"] % 2,
        height=vrs["height"] - vrs["height"] % 2, duration_s=float(t_rgb[-1] * 1e-9 + 1 / fps), camera=vrs["camera"],
        streams=streams, clocks={}, consent_status=status, imu_R=T_ci[:3, :3],
        imu_source=f"{src.name} factory calibration: T_device_camera⁻¹ · T_device_imu (imu-right)",
        provenance=prov, rig_extra=hands_rig,
        notes="Aria VRS: video, IMU and MPS share the device clock (offset 0 by construction, not estimated)",
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, tables, vrs_video_writer(vrs, t0, fps, src))
