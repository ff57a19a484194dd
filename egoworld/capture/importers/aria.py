"""Project Aria MPS outputs: closed-loop trajectory + online calibration + the RGB stream as MP4.

Read directly with the published column names (projectaria-tools is not needed for CSV/JSON and
pulls in jupyter, plotly and a pinned rerun-sdk): ``closed_loop_trajectory.csv``
(``tracking_timestamp_us``, ``tx/ty/tz_world_device``, ``qx/qy/qz/qw_world_device``,
``quality_score`` …) and ``online_calibration.jsonl`` (one JSON per line; the ``camera-rgb``
entry of ``CameraCalibrations`` gives ``T_Device_Camera`` {``Translation``, ``UnitQuaternion``
[w, [x, y, z]]} and ``Projection`` {``Name``, ``Params`` [f, cx, cy, k0…]}).

Hands (``hand_tracking/hand_tracking_results.csv`` if present, else ``wrist_and_palm_poses.csv``)
are in the device frame at their own ``tracking_timestamp_us``; they are moved into the world with
the trajectory interpolated at those times (SLERP) and kept on the same ``tracker`` clock (one
device, one clock). See ``read_hands`` for what maps and what is filled.

head_pose = T_world_device · T_device_rgb (the RGB camera in MPS's gravity-aligned world, z up),
stamped on the ``tracker`` clock: device time (µs → ns) minus ``video_start_us`` — the device
time of the MP4's first frame, which an MP4 export does not carry; without it the trajectory's
first sample is taken as the video start and sync measures the remaining offset (±1 s).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from egoworld.capture.importers.common import (
    ImportFormatError,
    build_meta,
    check_finite,
    check_times,
    consent_record,
    hands_table,
    head_pose_table,
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


def read_hands(mps: Path, traj_t_us: np.ndarray, p_wd: np.ndarray, q_wd: np.ndarray, start_us: int) -> tuple:
    """MPS hand tracking → (hands table or None, source path, what was filled).

    ``hand_tracking_results.csv``: the 21 MPS landmarks map to ours (MPS_LANDMARK_FOR_OURS); the thumb
    CMC, which MPS does not track, is filled at THUMB_CMC_FRACTION of wrist → thumb MCP; the wrist
    orientation is rebuilt from the landmarks in our convention (MPS's T_device_wrist axes differ).
    ``wrist_and_palm_poses.csv`` (no landmarks): the wrist keypoint is the MPS wrist, the wrist frame
    is x = wrist → palm, z = −palm normal (out of the back of the hand), y = z × x; the other 20
    keypoints are *unknown* and set to the wrist position (``rig.hands_keypoints = "wrist_only"``).
    A side with ``*_tracking_confidence`` ≤ 0 (MPS writes −1 when the hand is not seen) is left out
    at that time: a gap, not zeros. Device → world with the trajectory SLERPed at the hand times;
    hand samples outside the trajectory's time span are dropped.
    """
    from scipy.spatial.transform import Rotation, Slerp

    cands = [mps / "hand_tracking" / "hand_tracking_results.csv", mps / "hand_tracking_results.csv",
             mps / "hand_tracking" / "wrist_and_palm_poses.csv", mps / "wrist_and_palm_poses.csv"]
    path = next((p for p in cands if p.exists()), None)
    if path is None:
        return None, None, None
    cols = _csv_columns(path)
    landmarks = path.name == "hand_tracking_results.csv"
    need = ["tracking_timestamp_us"]
    for side in ("left", "right"):
        need.append(f"{side}_tracking_confidence")
        if landmarks:
            need += [f"t{a}_{side}_landmark_{k}_device" for k in range(21) for a in "xyz"]
        else:
            need += [f"t{a}_{side}_{p}_device" for p in ("wrist", "palm") for a in "xyz"]
            need += [f"n{a}_{side}_palm_device" for a in "xyz"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise ImportFormatError(path, f"missing MPS hand-tracking columns {missing[:6]}{' …' if len(missing) > 6 else ''}"
                                      + ("" if landmarks else " (wrist_and_palm_poses.csv needs the palm normals of MPS ≥ v2)"))
    t_us = np.asarray(cols["tracking_timestamp_us"])
    if not np.issubdtype(t_us.dtype, np.integer):
        raise ImportFormatError(path, "tracking_timestamp_us must be integer microseconds")
    if np.any(np.abs(t_us) > (2**63 - 1) // 1000):
        raise ImportFormatError(path, "tracking_timestamp_us overflows int64 nanoseconds (wrong unit?)")
    check_times(t_us.astype(np.int64) * 1000, path, "tracking_timestamp_us")
    inside = (t_us >= traj_t_us[0]) & (t_us <= traj_t_us[-1])
    if not inside.any():
        raise ImportFormatError(path, "no hand sample falls inside the trajectory's time span (different recordings?)")
    r_wd = Slerp(traj_t_us.astype(np.float64), Rotation.from_quat(q_wd, scalar_first=True))(t_us[inside].astype(np.float64))
    p = np.stack([np.interp(t_us[inside], traj_t_us, p_wd[:, i]) for i in range(3)], 1)
    rows = []
    for side in ("left", "right"):
        conf = np.asarray(cols[f"{side}_tracking_confidence"], dtype=np.float64)[inside]
        ok = conf > 0
        if not ok.any():
            continue
        if landmarks:
            mps_kp = np.stack([np.c_[[cols[f"t{a}_{side}_landmark_{k}_device"] for a in "xyz"]].T for k in range(21)], 1)
            mps_kp = check_finite(mps_kp.reshape(len(t_us), -1), path, f"{side} landmarks").reshape(-1, 21, 3)[inside]
            kp_dev = np.zeros((len(mps_kp), 21, 3))
            for ours, k in enumerate(MPS_LANDMARK_FOR_OURS):
                if k is not None:
                    kp_dev[:, ours] = mps_kp[:, k]
            kp_dev[:, 1] = kp_dev[:, 0] + THUMB_CMC_FRACTION * (kp_dev[:, 2] - kp_dev[:, 0])
        else:
            wrist = check_finite(np.c_[[cols[f"t{a}_{side}_wrist_device"] for a in "xyz"]].T, path, f"{side} wrist")[inside]
            kp_dev = np.repeat(wrist[:, None, :], 21, axis=1)
        kp = np.einsum("nij,nkj->nki", r_wd.as_matrix(), kp_dev) + p[:, None, :]
        kp = kp[ok]
        if landmarks:
            q = wrist_frame_from_keypoints(kp.copy(), side)
        else:
            palm = check_finite(np.c_[[cols[f"t{a}_{side}_palm_device"] for a in "xyz"]].T, path, f"{side} palm")[inside][ok]
            n_palm = check_finite(np.c_[[cols[f"n{a}_{side}_palm_device"] for a in "xyz"]].T, path, f"{side} palm normal")[inside][ok]
            rw = r_wd[np.flatnonzero(ok)]
            x = rw.apply(palm - wrist[ok])
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            z = -rw.apply(n_palm)
            z -= np.sum(z * x, axis=1, keepdims=True) * x
            z /= np.linalg.norm(z, axis=1, keepdims=True)
            y = np.cross(z, x)
            q = Rotation.from_matrix(np.stack([x, y, z], axis=2)).as_quat(scalar_first=True)
            q *= np.where(q[:, :1] < 0, -1.0, 1.0)
        t_ns = (t_us[inside][ok].astype(np.int64) - start_us) * 1000
        rows.append((t_ns, side, kp[:, 0], q, kp))
    if not rows:
        return None, path, None
    filled = (f"thumb_cmc filled at {THUMB_CMC_FRACTION} of wrist→thumb MCP (MPS has no CMC landmark)" if landmarks
              else "wrist_only: MPS wrist_and_palm_poses has no finger landmarks; the 20 non-wrist keypoints are set to the wrist")
    return hands_table(rows), path, filled


def import_aria(src: str | Path, out: str | Path, mps: str | Path, consent: str | None = None,
                video_start_us: int | None = None, session_id: str | None = None) -> Path:
    """RGB MP4 + an MPS folder (slam/closed_loop_trajectory.csv, slam/online_calibration.jsonl) → session."""
    from scipy.spatial.transform import Rotation

    src, mps = Path(src), Path(mps)
    traj_path = next((p for p in (mps / "slam" / "closed_loop_trajectory.csv", mps / "closed_loop_trajectory.csv") if p.exists()),
                     mps / "slam" / "closed_loop_trajectory.csv")
    calib_path = next((p for p in (mps / "slam" / "online_calibration.jsonl", mps / "online_calibration.jsonl") if p.exists()),
                      mps / "slam" / "online_calibration.jsonl")
    video = probe_source_video(src)
    tr = read_trajectory(traj_path)
    calib = rgb_calibration(calib_path)
    t_us = np.asarray(tr["tracking_timestamp_us"])
    if not np.issubdtype(t_us.dtype, np.integer):
        raise ImportFormatError(traj_path, "tracking_timestamp_us must be integer microseconds")
    if np.any(np.abs(t_us) > (2**63 - 1) // 1000):
        raise ImportFormatError(traj_path, "tracking_timestamp_us overflows int64 nanoseconds (wrong unit?)")
    start = int(t_us[0]) if video_start_us is None else int(video_start_us)
    t_ns = check_times((t_us.astype(np.int64) - start) * 1000, traj_path, "tracking_timestamp_us")
    p_wd = check_finite(np.c_[tr["tx_world_device"], tr["ty_world_device"], tr["tz_world_device"]], traj_path, "position")
    q_wd = quat_wxyz(np.c_[tr["qw_world_device"], tr["qx_world_device"], tr["qy_world_device"], tr["qz_world_device"]], traj_path)
    T_dc = calib["T_device_camera"]
    R_wd = Rotation.from_quat(q_wd, scalar_first=True)
    R_wc = R_wd * Rotation.from_matrix(T_dc[:3, :3])
    p_wc = p_wd + R_wd.apply(T_dc[:3, 3])
    q = R_wc.as_quat(scalar_first=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    params = list(calib["projection"].get("Params", []))
    w, h, fps = video["width"], video["height"], video["fps"] or 30.0
    if len(params) >= 3:
        f, cx, cy = params[:3]
        fisheye = "Fisheye" in str(calib["projection"].get("Name", ""))
        cam = {"intrinsics": {"fx": f, "fy": f, "cx": cx, "cy": cy},
               "camera_model": "opencv_fisheye" if fisheye else "pinhole",
               "distortion": (params[3:7] + [0.0] * 4)[:4] + [0.0] if fisheye else [0.0] * 5,
               "source": f"{calib_path.name}: {calib['projection'].get('Name')} (first 4 radial terms as OpenCV fisheye)"}
    else:
        raise ImportFormatError(calib_path, "camera-rgb Projection has no Params [f, cx, cy, …]")
    consent_rec, status = consent_record(consent, subject_id="unknown")
    hands, hands_path, hands_filled = read_hands(mps, t_us.astype(np.int64), p_wd, q_wd, start)
    streams = {"head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker",
                             "rate_hz": round(1e9 / float(np.median(np.diff(t_ns))), 3)}}
    tables = {"head_pose": head_pose_table(t_ns, p_wc, q)}
    if hands is not None:
        u = np.unique(hands.column("t_ns").to_numpy())
        streams["hands"] = {"file": "motion/hands.parquet", "clock": "tracker",
                            "rate_hz": round(1e9 / float(np.median(np.diff(u))), 3) if len(u) > 1 else 0.0}
        tables["hands"] = hands
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="aria", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam,
        streams=streams,
        clocks={"tracker": {"device": "Aria MPS SLAM", "description": f"device time − {start} µs"}},
        consent_status=status,
        provenance={"video": str(src), "trajectory": str(traj_path), "calibration": str(calib_path),
                    "video_start_us": start, "video_start_stated": video_start_us is not None,
                    "hands": str(hands_path) if hands_path else None},
        rig_extra={"hands_keypoints": None if hands is None else ("wrist_only" if "wrist_only" in hands_filled else "landmarks"),
                   "hands_filled": hands_filled},
        notes="head_pose is the RGB camera pose (T_world_device · T_device_rgb)",
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, tables, video_copier(src, fps))
