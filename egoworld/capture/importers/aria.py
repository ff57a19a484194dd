"""Project Aria MPS outputs: closed-loop trajectory + online calibration + the RGB stream as MP4.

Read directly with the published column names (projectaria-tools is not needed for CSV/JSON and
pulls in jupyter, plotly and a pinned rerun-sdk): ``closed_loop_trajectory.csv``
(``tracking_timestamp_us``, ``tx/ty/tz_world_device``, ``qx/qy/qz/qw_world_device``,
``quality_score`` …) and ``online_calibration.jsonl`` (one JSON per line; the ``camera-rgb``
entry of ``CameraCalibrations`` gives ``T_Device_Camera`` {``Translation``, ``UnitQuaternion``
[w, [x, y, z]]} and ``Projection`` {``Name``, ``Params`` [f, cx, cy, k0…]}).

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
    head_pose_table,
    probe_source_video,
    quat_wxyz,
    session_id_for,
    video_copier,
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
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="aria", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam,
        streams={"head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker",
                               "rate_hz": round(1e9 / float(np.median(np.diff(t_ns))), 3)}},
        clocks={"tracker": {"device": "Aria MPS SLAM", "description": f"device time − {start} µs"}},
        consent_status=status,
        provenance={"video": str(src), "trajectory": str(traj_path), "calibration": str(calib_path),
                    "video_start_us": start, "video_start_stated": video_start_us is not None},
        notes="head_pose is the RGB camera pose (T_world_device · T_device_rgb)",
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, {"head_pose": head_pose_table(t_ns, p_wc, q)}, video_copier(src, fps))
