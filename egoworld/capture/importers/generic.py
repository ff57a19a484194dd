"""Generic: any video PyAV decodes + CSV/Parquet motion files with a stated column map, units and clock.

Nothing is guessed: the column map (``--map t=timestamp,gx=gyro_x,…``; our names on the left),
the time unit, the gyro/accel units and each file's clock are given by the user; the tables are
checked (missing columns, NaN, non-monotonic or overflowing times, implausible units) before
anything is written. Intrinsics come from an OpenCV, Kalibr or EuRoC camera file (``--camera``).

The IMU's axes are rarely the camera's: the rotation ``rig.imu.R_camera_imu`` comes from
``--imu-to-camera`` (numbers or a file), else from the camera file's extrinsics (Kalibr
``cam0.T_cam_imu``; EuRoC ``T_BS``, the camera in the body = IMU frame), else it is identity and
``rig.imu.source`` says that it was assumed. Where it came from is in ``rig.imu.source`` and
``provenance.imu_to_camera``.

Streams: ``imu`` (t, gx, gy, gz, ax, ay, az) and ``head_pose`` (t, px, py, pz, qw, qx, qy, qz),
each on the clock its ``--*-clock`` option names (``camera`` when it was stamped by the video's
clock; any other name is an independent clock that sync estimates).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from egoworld.capture.importers.common import (
    GRAVITY,
    ImportFormatError,
    build_meta,
    check_finite,
    check_imu_units,
    check_rotation,
    check_times,
    consent_record,
    head_pose_table,
    imu_table,
    intrinsics_from_hfov,
    load_camera_file,
    probe_source_video,
    quat_wxyz,
    seconds_to_ns,
    session_id_for,
    video_copier,
)

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
GYRO_UNITS = {"rad/s": 1.0, "deg/s": np.pi / 180}
ACCEL_UNITS = {"m/s2": 1.0, "g": GRAVITY}
COLUMNS = {"imu": ("t", "gx", "gy", "gz", "ax", "ay", "az"), "head_pose": ("t", "px", "py", "pz", "qw", "qx", "qy", "qz")}


def read_table(path: Path, colmap: dict[str, str], stream: str) -> dict[str, np.ndarray]:
    """Our columns of ``stream`` from a CSV or Parquet file, renamed by ``colmap`` (ours → theirs)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise ImportFormatError(path, "motion file is missing")
    try:
        table = pq.read_table(path) if path.suffix.lower() in (".parquet", ".pq") else pcsv.read_csv(path)
    except (pa.ArrowException, OSError) as e:
        raise ImportFormatError(path, f"not a readable CSV/Parquet table ({e})") from e
    out = {}
    for ours in COLUMNS[stream]:
        theirs = colmap.get(ours, ours)
        if theirs not in table.column_names:
            raise ImportFormatError(path, f"missing column {theirs!r} for {stream}.{ours} (has {table.column_names}); "
                                          f"map it with --map {ours}=<column>")
        col = table.column(theirs)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise ImportFormatError(path, f"column {theirs!r} is {col.type}, not numeric")
        out[ours] = col.to_numpy(zero_copy_only=False)
    return out


def _times(raw: np.ndarray, unit: str, path: Path) -> np.ndarray:
    """Timestamps in the stated unit → int64 ns; a median sample interval outside 10 µs – 10 s means the
    unit is wrong (µs read as s, s read as ns …), which would otherwise pass every other check."""
    if unit == "ns" and np.issubdtype(raw.dtype, np.integer):
        t = check_times(raw.astype(np.int64), path)
    else:
        t = check_times(seconds_to_ns(np.asarray(raw, dtype=np.float64) * TIME_UNITS[unit], path), path)
    if len(t) > 1:
        dt = float(np.median(np.diff(t))) * 1e-9
        if not 1e-5 <= dt <= 10.0:
            raise ImportFormatError(path, f"median sample interval is {dt:.3g} s with --time-unit {unit}: "
                                          "wrong time unit? (expected 10 µs – 10 s)")
    return t


def import_generic(src: str | Path, out: str | Path, imu: str | Path | None = None, head_pose: str | Path | None = None,
                   colmap: dict[str, str] | None = None, time_unit: str = "s", gyro_unit: str = "rad/s",
                   accel_unit: str = "m/s2", imu_clock: str = "imu", head_clock: str = "tracker",
                   camera_file: str | Path | None = None, hfov_deg: float | None = None,
                   R_camera_imu: np.ndarray | None = None, consent: str | None = None, session_id: str | None = None,
                   imu_to_camera: tuple[np.ndarray, str] | None = None) -> Path:
    """Video + motion tables → a session. At least one of ``imu``/``head_pose`` is required."""
    src = Path(src)
    colmap = colmap or {}
    for name, value, allowed in (("time unit", time_unit, TIME_UNITS), ("gyro unit", gyro_unit, GYRO_UNITS),
                                 ("accel unit", accel_unit, ACCEL_UNITS)):
        if value not in allowed:
            raise ImportFormatError(Path("--" + name.replace(" ", "-")), f"{name} {value!r} is not one of {list(allowed)}")
    if imu is None and head_pose is None:
        raise ImportFormatError(src, "no motion file given: pass --imu and/or --head-pose")
    video = probe_source_video(src)
    w, h, fps = video["width"], video["height"], video["fps"] or 30.0
    streams, meta_streams, clocks = {}, {}, {}
    if imu is not None:
        p = Path(imu)
        a = read_table(p, colmap, "imu")
        t = _times(a["t"], time_unit, p)
        gyro = check_finite(np.c_[a["gx"], a["gy"], a["gz"]], p, "gyro") * GYRO_UNITS[gyro_unit]
        acc = check_finite(np.c_[a["ax"], a["ay"], a["az"]], p, "accel") * ACCEL_UNITS[accel_unit]
        check_imu_units(gyro, acc, p)
        streams["imu"] = imu_table(t, gyro, acc)
        meta_streams["imu"] = {"file": "motion/imu.parquet", "clock": imu_clock, "rate_hz": round(1e9 / float(np.median(np.diff(t))), 3)}
    if head_pose is not None:
        p = Path(head_pose)
        a = read_table(p, colmap, "head_pose")
        t = _times(a["t"], time_unit, p)
        pos = check_finite(np.c_[a["px"], a["py"], a["pz"]], p, "position")
        q = quat_wxyz(np.c_[a["qw"], a["qx"], a["qy"], a["qz"]], p)
        streams["head_pose"] = head_pose_table(t, pos, q)
        meta_streams["head_pose"] = {"file": "motion/head_pose.parquet", "clock": head_clock, "rate_hz": round(1e9 / float(np.median(np.diff(t))), 3)}
    for s in meta_streams.values():
        if s["clock"] != "camera":
            clocks[s["clock"]] = {"device": s["clock"], "description": "stated with the import"}
    cam = load_camera_file(Path(camera_file), w, h) if camera_file else {
        "intrinsics": intrinsics_from_hfov(w, h, hfov_deg or 90.0),
        "source": f"assumed horizontal FOV {hfov_deg or 90.0}° (pinhole); pass --camera for a calibration"}
    if imu_to_camera is not None:
        R_ci, R_source = imu_to_camera
    elif R_camera_imu is not None:
        R_ci, R_source = check_rotation(R_camera_imu, Path("R_camera_imu"), "R_camera_imu"), "stated by the caller"
    elif "R_camera_imu" in cam:
        R_ci, R_source = cam["R_camera_imu"], cam["extrinsics_source"]
    else:
        R_ci, R_source = np.eye(3), ("assumed identity (IMU axes = camera axes): pass --imu-to-camera or a --camera "
                                     "file with T_cam_imu" if imu is not None else "no IMU")
    consent_rec, status = consent_record(consent, subject_id="unknown")
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="generic", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam, streams=meta_streams,
        clocks=clocks, consent_status=status, imu_R=R_ci, imu_source=R_source,
        rig_extra={"source_codec": video["codec"]},
        provenance={"video": str(src), "imu": str(imu) if imu else None, "head_pose": str(head_pose) if head_pose else None,
                    "map": colmap, "units": {"time": time_unit, "gyro": gyro_unit, "accel": accel_unit},
                    "imu_to_camera": {"R_camera_imu": np.asarray(R_ci).tolist(), "source": R_source}},
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, streams, video_copier(src, fps))


def parse_imu_to_camera(spec: str) -> tuple[np.ndarray, str]:
    """``--imu-to-camera``: 9 numbers (row-major R_camera_imu), 16 (T_cam_imu), or a YAML/JSON file with
    ``R_camera_imu``, ``T_cam_imu`` (also inside Kalibr's ``cam0``) or EuRoC's ``T_BS`` → (R, where from)."""
    import json
    import re

    import yaml

    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        if not path.exists():
            raise ImportFormatError(path, "--imu-to-camera file is missing")
        try:
            text = path.read_text().replace("!!opencv-matrix", "")
            obj = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(re.sub(r"^%YAML.*\n", "", text))
        except Exception as e:  # noqa: BLE001 - any parse failure is the file's fault
            raise ImportFormatError(path, f"not valid JSON/YAML ({e})") from e
        obj = obj.get("cam0", obj) if isinstance(obj, dict) else obj

        def mat(v) -> np.ndarray:
            return np.asarray(v["data"] if isinstance(v, dict) and "data" in v else v, dtype=np.float64)

        if isinstance(obj, dict) and "R_camera_imu" in obj:
            return check_rotation(mat(obj["R_camera_imu"]).reshape(3, 3), path, "R_camera_imu"), f"{path.name} R_camera_imu"
        if isinstance(obj, dict) and "T_cam_imu" in obj:
            return check_rotation(mat(obj["T_cam_imu"]).reshape(4, 4)[:3, :3], path, "T_cam_imu"), f"{path.name} T_cam_imu"
        if isinstance(obj, dict) and "T_BS" in obj:
            R = np.linalg.inv(mat(obj["T_BS"]).reshape(4, 4))[:3, :3]
            return check_rotation(R, path, "T_BS"), f"{path.name} T_BS inverted (EuRoC's body frame is its IMU's)"
        raise ImportFormatError(path, "no R_camera_imu, T_cam_imu (or cam0.T_cam_imu) or T_BS in it")
    try:
        v = np.array([float(x) for x in re.split(r"[,\s;]+", spec.strip().strip("[]")) if x], dtype=np.float64)
    except ValueError as e:
        raise ImportFormatError(Path("--imu-to-camera"), f"{spec!r} is neither a file nor 9/16 numbers") from e
    if v.size not in (9, 16):
        raise ImportFormatError(Path("--imu-to-camera"), f"{v.size} numbers: give 9 (R_camera_imu) or 16 (T_cam_imu), row-major")
    R = v.reshape(3, 3) if v.size == 9 else v.reshape(4, 4)[:3, :3]
    return check_rotation(R, Path("--imu-to-camera"), "R_camera_imu"), "stated with --imu-to-camera"
