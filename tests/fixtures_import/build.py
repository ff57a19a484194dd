"""Turn a session with known truth into each real format, so that import → sync can be checked.

Every builder returns the files it wrote and the *expected* clock relation after import
(``expected_offset_ms``: what sync should find for the imported motion clock), derived from the
source session's truth and the time shift the format itself introduces. Layouts follow the
published formats: GoPro GPMF (gpmf.py), Gyroflow .gcsv, Project Aria MPS CSVs, EgoDex HDF5,
LeRobot v3.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial.transform import Rotation as R

from egoworld.capture.importers.camera import camera_axes
from egoworld.session import open_session
from egoworld.video import read_video, write_video
from tests.fixtures_import.gpmf import add_gpmf_track, gpmf_payload, udta_gpmf

R_CN = np.diag([1.0, -1.0, -1.0])  # Gyroflow normalised axes → OpenCV camera axes
IMU_HZ = 200.0


def truth(session: Path) -> dict:
    return json.loads((Path(session) / "truth" / "clocks.json").read_text())["streams"]


def copy_video(session: Path, dst: Path, fps: float, shift_ns: int = 0) -> np.ndarray:
    frames, pts = read_video(Path(session) / "video.mp4")
    write_video(dst, frames, pts + shift_ns, fps)
    return pts + shift_ns


def uniform_imu(session: Path, start_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The IMU resampled onto a perfect 200 Hz grid on its own clock from ``start_s`` (what a camera's
    telemetry track holds): (stream-clock seconds, gyro rad/s camera axes, accel m/s² camera axes)."""
    a = open_session(session).arrays("imu")
    t = a["t_ns"] * 1e-9
    grid = np.arange(start_s, t[-1], 1 / IMU_HZ)
    g = np.stack([np.interp(grid, t, a[k]) for k in ("gx", "gy", "gz")], 1)
    acc = np.stack([np.interp(grid, t, a[k]) for k in ("ax", "ay", "az")], 1)
    return grid, g, acc


def gopro_mp4(session: Path, dst: Path, stabilised: bool = False, grid_start_s: float | None = None,
              accel_every: int = 1, model: str = "HERO8 Black") -> dict:
    """A HERO8-style MP4: the session's video + a GPMF track with its IMU (ORIN/MTRX "YxZ").

    ``accel_every`` = 2 writes the accelerometer at half the gyro's rate in the same payloads, as a
    HERO5 does (its samples sit at 2·k/IMU_HZ, evenly spread like the gyro's)."""
    s = open_session(session)
    copy_video(session, dst, s.fps)
    t_imu = s.arrays("imu")["t_ns"] * 1e-9
    g0 = float(t_imu[0] + 0.05) if grid_start_s is None else grid_start_s
    grid, gyro, acc = uniform_imu(session, g0)
    # camera → normalised n = Rᵀ·v with the importer's mapping for this model (GoPro's, unmeasured for
    # the HERO8); the camera stores raw channels so that the matrix (rows: out_x = in_y,
    # out_y = −in_x, out_z = in_z) gives n back: raw = (−n_y, n_x, n_z).
    R_gopro = camera_axes("GoPro", model)[0]
    mtrx = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], dtype=np.float64)
    def raw(v: np.ndarray, scal: int) -> np.ndarray:
        n = v @ R_gopro  # = (Rᵀ v)ᵀ for each row
        return np.round(np.c_[-n[:, 1], n[:, 0], n[:, 2]] * scal).astype(np.int16)
    gscal, ascal = 1000, 418
    g_raw, a_raw = raw(gyro, gscal), raw(acc, ascal)
    per = int(IMU_HZ)
    payloads, durations, total = [], [], 0
    for k in range(0, len(grid), per):
        n = min(per, len(grid) - k)
        total += n
        payloads.append(gpmf_payload(int(round(k / IMU_HZ * 1e6)), total, g_raw[k:k + n], a_raw[k:k + n:accel_every], gscal,
                                     ascal, mtrx, model))
        durations.append(int(round(n / IMU_HZ * 1000)))
    add_gpmf_track(dst, payloads, durations, udta_gpmf(model, stabilised, "W", 122.6))
    off = truth(session)["imu"]["offset_ms"]
    return {"mp4": dst, "expected_offset_ms": off - g0 * 1e3, "grid_s": grid - g0,
            "gyro": gyro, "accel": acc, "quant": (1 / gscal, 1 / ascal)}


def gcsv_sidecar(session: Path, mp4: Path, extra_shift_s: float = 0.0) -> dict:
    """video + ``<stem>.gcsv`` (Gyroflow IMU log 1.3, orientation "XYZ", tscale 1 ms, gscale/ascale raw)."""
    s = open_session(session)
    copy_video(session, mp4, s.fps)
    t_imu = s.arrays("imu")["t_ns"] * 1e-9
    g0 = float(t_imu[0]) + 0.02
    grid, gyro, acc = uniform_imu(session, g0)
    n_g, n_a = gyro @ R_CN, acc @ R_CN
    gscale, ascale = 0.0005, 1 / 2048  # rad/s per count, g per count
    gcsv = mp4.with_suffix(".gcsv")
    lines = ["GYROFLOW IMU LOG", "version,1.3", "id,egoworld_fixture", "orientation,XYZ", "vendor,egoworld",
             f"videofilename,{mp4.name}", "lens_info,wide", "tscale,0.0001", f"gscale,{gscale}", f"ascale,{ascale}",
             "t,gx,gy,gz,ax,ay,az"]
    t_ticks = np.round((grid - g0 + extra_shift_s) / 0.0001).astype(np.int64)
    gi = np.round(n_g / gscale).astype(np.int64)
    ai = np.round(n_a / 9.80665 / ascale).astype(np.int64)
    lines += [",".join(map(str, [t_ticks[i], *gi[i], *ai[i]])) for i in range(len(grid))]
    gcsv.write_text("\n".join(lines) + "\n")
    off = truth(session)["imu"]["offset_ms"]
    # telemetry-parser starts a gcsv timeline at its first sample, so the shift written into ``t``
    # does not survive: the IMU clock's zero is the first sample (docs/importers/camera.md).
    return {"mp4": mp4, "gcsv": gcsv, "expected_offset_ms": off - g0 * 1e3, "gyro": gyro,
            "accel": acc, "grid_s": grid - g0}


def _pose_at(session: Path, t_stream_s: np.ndarray) -> tuple[np.ndarray, R]:
    a = open_session(session).arrays("head_pose")
    from scipy.spatial.transform import Slerp

    t = a["t_ns"] * 1e-9
    p = np.stack([np.interp(t_stream_s, t, a[k]) for k in ("px", "py", "pz")], 1)
    r = Slerp(t, R.from_quat(np.c_[a["qw"], a["qx"], a["qy"], a["qz"]], scalar_first=True))(np.clip(t_stream_s, t[0], t[-1]))
    return p, r


def _hands_at(session: Path, t_stream_s: np.ndarray) -> dict[str, np.ndarray]:
    a = open_session(session).arrays("hands")
    out = {}
    for side in ("left", "right"):
        m = a["side"] == side
        t = a["t_ns"][m] * 1e-9
        kp = a["keypoints"][m].reshape(-1, 63)
        out[side] = np.stack([np.interp(t_stream_s, t, kp[:, j]) for j in range(63)], 1).reshape(-1, 21, 3)
    return out


R_OURS_ARKIT = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def egodex_pair(session: Path, dst_dir: Path, lag_s: float = 0.0) -> dict:
    """``0.mp4`` + ``0.hdf5`` in the EgoDex layout: per-frame ARKit transforms (y-up world, OpenGL camera),
    posed at frame time + ``lag_s`` (a pairing error the importer must not hide)."""
    import h5py

    from egoworld.capture.importers.egodex import joint_names

    s = open_session(session)
    dst_dir.mkdir(parents=True, exist_ok=True)
    mp4 = dst_dir / "0.mp4"
    pts = copy_video(session, mp4, s.fps)
    off = truth(session)["head_pose"]["offset_ms"] * 1e-3
    t_stream = pts * 1e-9 + off + lag_s
    p, r = _pose_at(session, t_stream)
    hands = _hands_at(session, t_stream)
    A = R_OURS_ARKIT.T  # ours → ARKit
    cam = np.tile(np.eye(4), (len(pts), 1, 1))
    cam[:, :3, :3] = A @ r.as_matrix() @ np.diag([1.0, -1.0, -1.0])
    cam[:, :3, 3] = p @ A.T
    rig = s.meta["rig"]["intrinsics"]
    with h5py.File(dst_dir / "0.hdf5", "w") as f:
        f["transforms/camera"] = cam
        f["camera/intrinsic"] = np.array([[rig["fx"], 0, rig["cx"]], [0, rig["fy"], rig["cy"]], [0, 0, 1.0]])
        for side in ("left", "right"):
            for j, name in enumerate(joint_names(side)):
                T = np.tile(np.eye(4), (len(pts), 1, 1))
                T[:, :3, 3] = hands[side][:, j] @ A.T
                f[f"transforms/{name}"] = T
                f[f"confidences/{name}"] = np.full(len(pts), 0.9)
            meta = np.tile(np.eye(4), (len(pts), 1, 1))
            f[f"transforms/{side}IndexFingerMetacarpal"] = meta  # present in EgoDex, unused by us
    return {"mp4": mp4, "hdf5": dst_dir / "0.hdf5", "expected_offset_ms": -lag_s * 1e3, "head_p": p, "head_r": r,
            "hands": hands, "pts": pts}


def aria_mps(session: Path, dst_dir: Path, start_us: int = 1_234_567_890) -> dict:
    """RGB MP4 + ``slam/closed_loop_trajectory.csv`` + ``slam/online_calibration.jsonl`` (MPS layout).

    The device frame differs from the RGB camera by a known T_device_rgb (a tilt, as on Aria
    glasses), so the importer must compose it back. Device time = head-tracker time + start_us."""
    s = open_session(session)
    dst_dir.mkdir(parents=True, exist_ok=True)
    mp4 = dst_dir / "rgb.mp4"
    copy_video(session, mp4, s.fps)
    a = s.arrays("head_pose")
    R_dc = R.from_euler("xyz", [0.3, -0.1, 0.05])
    t_dc = np.array([0.05, 0.01, -0.02])
    r_wc = R.from_quat(np.c_[a["qw"], a["qx"], a["qy"], a["qz"]], scalar_first=True)
    r_wd = r_wc * R_dc.inv()
    p_wd = np.c_[a["px"], a["py"], a["pz"]] - r_wd.apply(t_dc)
    q = r_wd.as_quat()  # x, y, z, w
    t_us = np.round(a["t_ns"] / 1000).astype(np.int64) + start_us
    (dst_dir / "slam").mkdir(exist_ok=True)
    cols = ["graph_uid", "tracking_timestamp_us", "utc_timestamp_ns", "tx_world_device", "ty_world_device", "tz_world_device",
            "qx_world_device", "qy_world_device", "qz_world_device", "qw_world_device", "device_linear_velocity_x_device",
            "device_linear_velocity_y_device", "device_linear_velocity_z_device", "angular_velocity_x_device",
            "angular_velocity_y_device", "angular_velocity_z_device", "gravity_x_world", "gravity_y_world", "gravity_z_world",
            "quality_score", "geo_available", "tx_ecef_device", "ty_ecef_device", "tz_ecef_device", "qx_ecef_device",
            "qy_ecef_device", "qz_ecef_device", "qw_ecef_device"]
    lines = [",".join(cols)]
    for i in range(len(t_us)):
        lines.append(",".join(["0", str(t_us[i]), "-1", *(f"{v:.9f}" for v in p_wd[i]), *(f"{v:.9f}" for v in q[i]),
                               "0", "0", "0", "0", "0", "0", "0", "0", "-9.81", "1.0", "0", "0", "0", "0", "0", "0", "0", "1"]))
    (dst_dir / "slam" / "closed_loop_trajectory.csv").write_text("\n".join(lines) + "\n")
    rig = s.meta["rig"]["intrinsics"]
    qd = R_dc.as_quat(scalar_first=True)
    calib = {"tracking_timestamp_us": int(t_us[0]), "utc_timestamp_ns": -1, "CameraCalibrations": [
        {"Label": "camera-slam-left", "T_Device_Camera": {"Translation": [0, 0, 0], "UnitQuaternion": [1, [0, 0, 0]]},
         "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": [240.0, 320.0, 240.0] + [0.0] * 12}},
        {"Label": "camera-rgb", "T_Device_Camera": {"Translation": t_dc.tolist(), "UnitQuaternion": [qd[0], qd[1:].tolist()]},
         "Projection": {"Name": "FisheyeRadTanThinPrism", "Params": [rig["fx"], rig["cx"], rig["cy"]] + [0.0] * 12}}],
        "ImuCalibrations": []}
    (dst_dir / "slam" / "online_calibration.jsonl").write_text(json.dumps(calib) + "\n")
    return {"mp4": mp4, "mps": dst_dir, "start_us": start_us, "expected_offset_ms": truth(session)["head_pose"]["offset_ms"],
            "head_pose": a}


def generic_files(session: Path, dst_dir: Path) -> dict:
    """video + an IMU CSV with vendor column names in ms, deg/s and g, + head pose as Parquet in µs."""
    s = open_session(session)
    dst_dir.mkdir(parents=True, exist_ok=True)
    mp4 = dst_dir / "clip.mkv"
    frames, pts = read_video(Path(session) / "video.mp4")
    import av
    from fractions import Fraction

    with av.open(str(mp4), "w") as c:  # a different container and codec (MPEG-4 Part 2 in Matroska)
        st = c.add_stream("mpeg4", rate=30)
        st.width, st.height, st.pix_fmt, st.time_base = frames.shape[2], frames.shape[1], "yuv420p", Fraction(1, 1000)
        for f, t in zip(frames, pts):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = int(round(t / 1e6)), Fraction(1, 1000)
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    a = s.arrays("imu")
    import csv

    with open(dst_dir / "imu.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "gyro_x", "gyro_y", "gyro_z", "acc_x", "acc_y", "acc_z"])
        for i in range(len(a["t_ns"])):
            w.writerow([f"{a['t_ns'][i] / 1e6:.6f}", *(f"{np.degrees(a[k][i]):.9f}" for k in ("gx", "gy", "gz")),
                        *(f"{a[k][i] / 9.80665:.9f}" for k in ("ax", "ay", "az"))])
    h = s.arrays("head_pose")
    pq.write_table(pa.table({"time_us": h["t_ns"] / 1000.0, "epoch_us": h["t_ns"] / 1000.0 + 1.7e15, **{k: h[k] for k in ("px", "py", "pz", "qw", "qx", "qy", "qz")}}),
                   dst_dir / "head.parquet")
    tr = truth(session)
    return {"mp4": mp4, "imu": dst_dir / "imu.csv", "head_pose": dst_dir / "head.parquet",
            "expected": {"imu": tr["imu"]["offset_ms"], "tracker": tr["head_pose"]["offset_ms"]}}
