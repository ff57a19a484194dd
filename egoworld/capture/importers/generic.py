"""Generic: any video PyAV decodes + CSV/Parquet motion files with a stated column map, units and clock.

Nothing is guessed: the column map (``--map t=timestamp,gx=gyro_x,…``; our names on the left),
the time unit, the gyro/accel units and each file's clock are given by the user; the tables are
checked (missing columns, NaN, non-monotonic or overflowing times, implausible units) before
anything is written. Intrinsics come from an OpenCV or Kalibr camera file (``--camera``).

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
                   R_camera_imu: np.ndarray | None = None, consent: str | None = None, session_id: str | None = None) -> Path:
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
    consent_rec, status = consent_record(consent, subject_id="unknown")
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="generic", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam, streams=meta_streams,
        clocks=clocks, consent_status=status, imu_R=np.eye(3) if R_camera_imu is None else R_camera_imu,
        rig_extra={"source_codec": video["codec"]},
        provenance={"video": str(src), "imu": str(imu) if imu else None, "head_pose": str(head_pose) if head_pose else None,
                    "map": colmap, "units": {"time": time_unit, "gyro": gyro_unit, "accel": accel_unit}},
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, streams, video_copier(src, fps))
