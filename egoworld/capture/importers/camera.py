"""Action cameras and phones: the gyro/accelerometer the camera embedded, via telemetry-parser.

telemetry-parser (Gyroflow's parser) reads GoPro GPMF (HERO5+), Sony, Insta360, DJI, Blackmagic,
RED, Gyroflow ``.gcsv`` sidecars and phone sensor-logger files. ``normalized_imu()`` returns, per
sample, ``timestamp_ms`` on the file's telemetry timeline, gyro in deg/s and accel in m/s², with
the vendor's axis order/orientation tags (GoPro ``ORIN``/``ORIO``/``MTRX``, gcsv ``orientation``)
applied. We store those samples unchanged (deg → rad only) as the ``imu`` stream on its own
``imu`` clock and state the fixed rotation into our camera frame (OpenCV: x right, y down, z
forward) as ``rig.imu.R_camera_imu``. Which rotation that is was measured, per camera model, on
real files (the picture's rotation against the gyro's, ``egoworld.sync.axes``; see
docs/importers/camera.md): "normalised" does not mean the same axes on every camera.

Cameras that log gyro and accelerometer at different rates (HERO5: ≈400 and ≈200 Hz in the same
payloads) come back from ``normalized_imu()`` paired by index, so the accelerometer would be
stamped with gyro times (compressed in time). GPMF spreads each stream's samples evenly over the
whole file, so each stream gets its own times: the gyro keeps every sample and the accelerometer
is interpolated at the gyro times from its own.

In-camera stabilisation (GoPro HyperSmooth ``EISE``/``EISA``, or ``--stabilised``) is recorded in
``rig.stabilization``: such footage no longer moves with the gyro, so sync must not report a
confident offset for it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from egoworld.capture.importers.common import (
    ImportFormatError,
    build_meta,
    check_imu_units,
    check_times,
    consent_record,
    imu_table,
    intrinsics_from_hfov,
    load_camera_file,
    probe_source_video,
    seconds_to_ns,
    session_id_for,
    video_copier,
)

# telemetry-parser's normalised axes → OpenCV camera axes (x right, y down, z forward), per camera.
# Measured on real files by matching the picture's rotation with the gyro's over the 24 axis
# permutations with signs (egoworld.sync.axes.rank_axes; tests/test_real_gopro.py re-checks each):
#   HERO5 Black (karma.mp4, gimbal, no stabilisation): peak correlation 0.98 with camera y = −n_x
#     (the pan axis; every candidate with that row ties at 0.98); x = −n_y and z = −n_z from the
#     partial correlations of the two small axes (0.10, 0.21; the alternatives ≤ 0.09) and from
#     the accelerometer (gravity along n_x: the horizon is level in the picture);
#   HERO7 Black (hero7.mp4, HyperSmooth): the same matrix, 0.44 vs 0.27 for the next candidate
#     (rotation over 0.5 s, which HyperSmooth leaves in the picture);
#   GoPro Max, hero mode (max-heromode.mp4, HyperSmooth + horizon levelling): a matrix turned 90°
#     about the vertical, 0.65 vs 0.61 for the HERO5/7 one.
# Other models fall back to the HERO5/7 matrix (said so in rig.imu.source): a wrong mapping
# shows as a low sync correlation and a failed verdict, never as a confident wrong offset.
R_GOPRO = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
GOPRO_AXES: dict[str, np.ndarray] = {
    "HERO5 Black": R_GOPRO,
    "HERO7 Black": R_GOPRO,
    "GoPro Max": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}
# Gyroflow's documented normalised axes (x right, y up, z backward), the phone convention of the
# Sensor Logger path; not measured on a real non-GoPro camera file.
R_CAMERA_NORMALIZED = np.diag([1.0, -1.0, -1.0])

GOPRO_FOV_MODES = {"W": "wide", "S": "superview", "L": "linear", "N": "narrow", "M": "medium", "H": "hyperview",
                   "X": "max superview"}  # 'M' is Medium on HERO5–7 and Max SuperView on the MAX (lens_mode)
# GoPro's published horizontal FOV (degrees, 16:9 video) per lens mode, used as an equidistant
# (fisheye-like) lens when there is no calibration: nominal values, so marked as assumed.
GOPRO_HFOV_DEG = {"wide": 118.2, "superview": 122.6, "linear": 85.8, "medium": 94.4, "narrow": 64.4,
                  "hyperview": 124.0, "max superview": 140.0}


def camera_axes(make: str | None, model: str | None) -> tuple[np.ndarray, str]:
    """(R_camera_imu for telemetry-parser's normalised axes, where it comes from) for one camera."""
    if str(make or "").lower() == "gopro":
        if model in GOPRO_AXES:
            return GOPRO_AXES[model], f"measured on a real {model} file (picture vs gyro rotation)"
        return R_GOPRO, (f"not measured for {model!r}: the HERO5/HERO7 mapping is assumed (check the sync "
                         "correlation; egoworld.sync.axes.rank_axes measures it)")
    return R_CAMERA_NORMALIZED, "Gyroflow's normalised axes (x right, y up, z backward), assumed; not measured on this camera"


def _fourcc(key: str) -> str:
    """telemetry-parser prints unknown GPMF tags as '0x45495345'; turn that back into 'EISE'."""
    if key.startswith("0x") and len(key) == 10:
        try:
            return bytes.fromhex(key[2:]).decode("latin-1")
        except ValueError:
            return key
    return key


def _settings(telemetry: list[dict]) -> dict[str, Any]:
    """Flat {tag: value} of the scalar metadata in every group (GPMF FourCCs decoded)."""
    out: dict[str, Any] = {}
    for sample in telemetry:
        for group in sample.values():
            if not isinstance(group, dict):
                continue
            for k, v in group.items():
                if k == "Metadata" and isinstance(v, dict):
                    out.update({str(a): b for a, b in v.items() if isinstance(b, (str, int, float, bool))})
                elif isinstance(v, (str, int, float, bool)):
                    out.setdefault(_fourcc(k), v)
    return out


def stabilisation(settings: dict[str, Any], override: str) -> dict:
    """What the metadata says about in-camera stabilisation (or the user's override).

    GoPro: ``EISE`` 'Y'/'N' is the switch (gpmf-parser's README); HERO5/6 files carry only
    ``EISA``, whose 'N' means off and anything else (HERO7+ 'HS EIS', MAX 'HS HLevel') names the
    HyperSmooth mode in use.
    """
    if override in ("yes", "no"):
        return {"in_camera": override == "yes", "detail": "stated with --stabilised", "source": "user"}
    if "EISE" in settings or "EISA" in settings:
        eise, eisa = settings.get("EISE"), settings.get("EISA")
        if eise is not None and str(eise).strip().upper() in ("Y", "N"):
            on = str(eise).strip().upper() == "Y"
        else:
            on = str(eisa).strip().upper() not in ("N", "N/A", "", "OFF", "NONE")
        mode = f"HyperSmooth ({eisa})" if on and eisa not in (None, "Y") else ("electronic stabilisation" if on else "off")
        return {"in_camera": on, "detail": f"GoPro EISE={eise!r} EISA={eisa!r}: {mode}", "source": "GPMF"}
    for k in ("stabilization", "stabilisation", "eis", "ois"):
        for sk, v in settings.items():
            if sk.lower() == k:
                return {"in_camera": str(v).lower() not in ("0", "false", "off", "no", "none"), "detail": f"{sk}={v!r}",
                        "source": "telemetry metadata"}
    return {"in_camera": None, "detail": "the metadata does not say; if the camera stabilised, pass --stabilised yes",
            "source": "none"}


def read_telemetry(path: Path) -> tuple[Any, list[dict]]:
    """Parse ``path`` with telemetry-parser; errors name the file."""
    import telemetry_parser

    if not path.exists():
        raise ImportFormatError(path, "file is missing")
    try:
        parser = telemetry_parser.Parser(str(path))
        imu = parser.normalized_imu()
    except Exception as e:
        raise ImportFormatError(path, f"no camera telemetry found ({e}); supported: GoPro GPMF, Sony, Insta360, DJI, "
                                      "Gyroflow .gcsv, phone sensor-logger files") from e
    if not imu:
        raise ImportFormatError(path, "contains no gyro/accelerometer samples (a file with no telemetry?)")
    return parser, imu


def split_rates(imu: list[dict], path: Path) -> dict:
    """Gyro and accelerometer of ``normalized_imu()`` rows, each on its own times.

    telemetry-parser pairs the two streams by index and stamps both with the gyro's times; when
    one stream has fewer samples (HERO5: accel at half the gyro rate), its samples fill only the
    first rows. GPMF spreads every stream evenly over the whole file, so a stream with n samples
    over the gyro's span T (n_gyro periods) has period T / n. The accelerometer is then
    interpolated at the gyro times (held at the ends), so the stored table keeps every gyro sample.
    """
    g_rows = [r for r in imu if r.get("gyro") is not None]
    a_vals = [r["accl"] for r in imu if r.get("accl") is not None]
    if len(g_rows) < 2:
        raise ImportFormatError(path, "has fewer than two gyro samples")
    if len(a_vals) < 2:
        raise ImportFormatError(path, "has no accelerometer samples")
    t_g = np.array([r["timestamp_ms"] for r in g_rows], dtype=np.float64) * 1e-3
    gyro = np.radians(np.array([r["gyro"] for r in g_rows], dtype=np.float64))
    acc = np.array(a_vals, dtype=np.float64)
    if len(acc) == len(g_rows) and all(r.get("accl") is not None for r in g_rows):
        return {"t_s": t_g, "gyro": gyro, "accel": acc, "accel_rate_hz": None}
    period = float(np.median(np.diff(t_g)))
    total = period * len(t_g)  # the span the gyro's n samples cover, n periods
    t_a = t_g[0] + np.arange(len(acc)) * (total / len(acc))
    acc_at_g = np.stack([np.interp(t_g, t_a, acc[:, i]) for i in range(3)], 1)
    return {"t_s": t_g, "gyro": gyro, "accel": acc_at_g, "accel_rate_hz": len(acc) / total}


SENSOR_LOGGER_HEADER = "time,seconds_elapsed"


def _first_time_ns(path: Path) -> int:
    """The ``time`` (ns since the epoch) of a Sensor Logger CSV's first row: telemetry-parser drops it."""
    import csv

    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = [h.strip() for h in next(r, [])]
        row = next(r, None)
    if "time" not in header or row is None:
        raise ImportFormatError(path, "Sensor Logger CSV without a 'time' column or without rows")
    try:
        return int(row[header.index("time")])
    except ValueError as e:
        raise ImportFormatError(path, f"'time' must be integer nanoseconds since the epoch, got {row[header.index('time')]!r}") from e


def sensor_logger_files(path: Path, tmp: Path) -> dict[str, Path] | None:
    """{'gyro': Gyroscope.csv, 'accel': Accelerometer.csv} if ``path`` is a Sensor Logger export (the folder,
    one of its CSVs, or the app's zip, unpacked into ``tmp``); None if it is not one."""
    import zipfile

    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = {Path(n).name: n for n in z.namelist()}
                if "Gyroscope.csv" not in names:
                    raise ImportFormatError(path, "zip has no Gyroscope.csv (not a Sensor Logger export?)")
                for want in ("Gyroscope.csv", "Accelerometer.csv"):
                    if want in names:
                        (tmp / want).write_bytes(z.read(names[want]))
        except zipfile.BadZipFile as e:
            raise ImportFormatError(path, f"not a readable zip ({e})") from e
        folder = tmp
    elif path.is_dir():
        folder = path
    elif path.is_file() and path.suffix.lower() == ".csv":
        with open(path, "rb") as fh:
            if SENSOR_LOGGER_HEADER.encode() not in fh.read(200):
                return None
        folder = path.parent
    else:
        return None
    gyro, accel = folder / "Gyroscope.csv", folder / "Accelerometer.csv"
    if not gyro.exists():
        raise ImportFormatError(gyro, "Sensor Logger export without Gyroscope.csv: record the gyroscope")
    if not accel.exists():
        raise ImportFormatError(accel, "Sensor Logger export without Accelerometer.csv: record the accelerometer")
    return {"gyro": gyro, "accel": accel}


def _logger_groups(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'Gyroscope'|'Accelerometer': (t seconds, xyz)} from telemetry-parser's raw ``telemetry()`` of a
    Sensor Logger CSV (it also reads the sibling CSVs of the folder, on the passed file's time origin)."""
    import telemetry_parser

    try:
        tel = telemetry_parser.Parser(str(path.resolve())).telemetry()
    except Exception as e:
        raise ImportFormatError(path, f"telemetry-parser cannot read it ({e})") from e
    out = {}
    for sample in tel:
        for group, tags in sample.items():
            data = tags.get("Data") if isinstance(tags, dict) else None
            if group not in ("Gyroscope", "Accelerometer") or not data:
                continue
            unit = str(tags.get("Unit", ""))
            if (group, unit) not in (("Gyroscope", "rad/s"), ("Accelerometer", "m/s²")):
                raise ImportFormatError(path, f"{group} unit {unit!r}: expected rad/s (gyro) and m/s² (accelerometer)")
            if str(tags.get("Orientation", "XYZ")) != "XYZ":
                raise ImportFormatError(path, f"{group} orientation {tags.get('Orientation')!r} is not supported (XYZ)")
            out[group] = (np.array([d["t"] for d in data], dtype=np.float64),
                          np.array([[d["x"], d["y"], d["z"]] for d in data], dtype=np.float64))
    return out


def read_sensor_logger(files: dict[str, Path]) -> dict:
    """Gyro and accelerometer of a Sensor Logger export, through telemetry-parser, on one timeline.

    Phone sensors run at their own rates and start at different times, and telemetry-parser's
    ``normalized_imu`` pairs the gyro and accelerometer *by index* (so it would stamp accel samples
    with gyro times). We take each sensor's own samples and times from ``Parser.telemetry()``
    instead, interpolate the accelerometer at the gyro times, and drop gyro samples outside the
    accelerometer's span. The IMU clock is ns since the first gyro sample (telemetry-parser's origin);
    that sample's epoch time (read from the CSV, which telemetry-parser drops) goes to provenance.
    """
    g0 = _first_time_ns(files["gyro"])
    groups = _logger_groups(files["gyro"])
    if "Gyroscope" not in groups:
        raise ImportFormatError(files["gyro"], "telemetry-parser found no gyroscope samples in it")
    tg, g = groups["Gyroscope"]
    if "Accelerometer" in groups:  # read beside the gyro, on the gyro file's time origin
        ta, a = groups["Accelerometer"]
    else:
        acc_groups = _logger_groups(files["accel"])
        if "Accelerometer" not in acc_groups:
            raise ImportFormatError(files["accel"], "telemetry-parser found no accelerometer samples in it")
        ta, a = acc_groups["Accelerometer"]
        ta = ta + (_first_time_ns(files["accel"]) - g0) * 1e-9
    for path, v in ((files["gyro"], g), (files["accel"], a)):
        if not np.all(np.isfinite(v)):
            raise ImportFormatError(path, "samples contain NaN or infinite values")
    tg_ns = check_times(seconds_to_ns(tg, files["gyro"], "time"), files["gyro"], "time")
    ta_ns = check_times(seconds_to_ns(ta, files["accel"], "time"), files["accel"], "time")
    inside = (tg_ns >= ta_ns[0]) & (tg_ns <= ta_ns[-1])
    if inside.sum() < 2:
        raise ImportFormatError(files["accel"], "accelerometer and gyroscope logs do not overlap in time")
    acc = np.stack([np.interp(tg_ns[inside], ta_ns, a[:, i]) for i in range(3)], 1)
    return {"t_ns": tg_ns[inside], "gyro": g[inside], "accel": acc, "epoch_ns": g0,
            "dropped_outside_accel": int((~inside).sum())}


def lens_mode(settings: dict[str, Any], model: str | None) -> str | None:
    """The GoPro lens mode (``VFOV``) in words; None if the file does not say."""
    code = settings.get("VFOV")
    if code is None:
        return None
    if str(code) == "M" and "max" in str(model or "").lower():
        return "max superview"
    return GOPRO_FOV_MODES.get(str(code), str(code))


def camera_intrinsics(settings: dict[str, Any], w: int, h: int, camera_file: str | Path | None,
                      hfov_deg: float | None, mode: str | None = None) -> dict:
    """The lens: a calibration file; else the camera's own FOV data (GPMF ``ZFOV``, or the lens mode's
    published FOV); else ``--hfov`` / 90°. Everything but a calibration is marked ``assumed``."""
    if camera_file:
        return {**load_camera_file(Path(camera_file), w, h), "assumed": False}
    zfov = settings.get("ZFOV")
    if hfov_deg is None and isinstance(zfov, (int, float)) and 10 < zfov < 179:
        f = np.hypot(w, h) / 2 / np.tan(np.radians(zfov) / 2)
        return {"intrinsics": {"fx": f, "fy": f, "cx": w / 2, "cy": h / 2}, "assumed": True,
                "source": f"assumed: pinhole approximation from the camera's diagonal FOV (ZFOV {zfov:.1f}°); "
                          "pass --camera for a calibration"}
    if hfov_deg is None and mode in GOPRO_HFOV_DEG:
        hf = GOPRO_HFOV_DEG[mode]
        f = (w / 2) / np.radians(hf / 2)  # equidistant: r = f·θ, the edge of the frame at half the FOV
        return {"intrinsics": {"fx": f, "fy": f, "cx": w / 2, "cy": h / 2}, "camera_model": "opencv_fisheye",
                "distortion": [0.0] * 5, "assumed": True,
                "source": f"assumed: GoPro's published {hf}° horizontal FOV for the '{mode}' lens mode (VFOV), "
                          "equidistant lens; pass --camera for a calibration"}
    hf = hfov_deg or 90.0
    return {"intrinsics": intrinsics_from_hfov(w, h, hf), "assumed": True,
            "source": f"assumed horizontal FOV {hf}° (pinhole"
                      + (", stated with --hfov" if hfov_deg else ", a default") + "); pass --camera for a calibration"}


def import_camera(src: str | Path, out: str | Path, consent: str | None = None, telemetry: str | Path | None = None,
                  camera_file: str | Path | None = None, hfov_deg: float | None = None, stabilised: str = "auto",
                  session_id: str | None = None) -> Path:
    """``clip.mp4`` (+ optional telemetry sidecar) → a session with ``video.mp4`` and ``motion/imu.parquet``."""
    src = Path(src)
    video = probe_source_video(src)
    tel_path = Path(telemetry) if telemetry else src
    import tempfile

    logger = None
    with tempfile.TemporaryDirectory() as tmp:
        files = sensor_logger_files(tel_path, Path(tmp)) if telemetry else None
        if files is not None:
            logger = read_sensor_logger(files)
    if logger is not None:
        class _Phone:  # what the metadata code below needs of a telemetry-parser Parser
            camera, model = "Mobile app", "Sensor Logger"
        parser, settings = _Phone(), {}
        t_ns, gyro, accel = logger["t_ns"], logger["gyro"], logger["accel"]
        check_imu_units(gyro, accel, files["gyro"])
    else:
        parser, imu = read_telemetry(tel_path)
        try:
            settings = _settings(parser.telemetry())
        except Exception:  # noqa: BLE001 - metadata is optional; the IMU is what we need
            settings = {}
        split = split_rates(imu, tel_path)
        t_ns = check_times(seconds_to_ns(split["t_s"], tel_path, "IMU timestamps"), tel_path, "IMU timestamps")
        gyro, accel = split["gyro"], split["accel"]
        if not (np.all(np.isfinite(gyro)) and np.all(np.isfinite(accel))):
            raise ImportFormatError(tel_path, "IMU samples contain NaN or infinite values")
        check_imu_units(gyro, accel, tel_path)

    w, h, fps = video["width"], video["height"], video["fps"] or 30.0
    mode = lens_mode(settings, parser.model)
    cam = camera_intrinsics(settings, w, h, camera_file, hfov_deg, mode)
    stab = stabilisation(settings, stabilised)
    rate = float(1e9 / np.median(np.diff(t_ns)))
    sid = session_id or session_id_for(src)
    consent_rec, status = consent_record(consent, subject_id="unknown")
    lens = {"fov_mode": mode,
            "diagonal_fov_deg": settings.get("ZFOV"), "lens_info": settings.get("lens_info") or settings.get("lensprofile")}
    R_ci, axes_source = camera_axes(parser.camera, parser.model)
    if logger is not None:
        axes_source = "phone axes (x right, y up, z out of the screen), portrait, rear camera"
    meta = build_meta(
        session_id=sid, source="camera", fps=fps, width=w, height=h,
        duration_s=float((video["pts_ns"][-1] - video["pts_ns"][0]) * 1e-9 + 1 / fps), camera=cam,
        streams={"imu": {"file": "motion/imu.parquet", "clock": "imu", "rate_hz": round(rate, 3)}},
        clocks={"imu": {"device": f"{parser.camera} {parser.model or ''}".strip(),
                        "description": "the camera's telemetry timeline as telemetry-parser reports it"}},
        consent_status=status, imu_R=R_ci, imu_source=axes_source,
        rig_extra={"camera_make": parser.camera, "camera_name": parser.model, "lens": lens,
                   "source_codec": video["codec"], "stabilization": stab},
        provenance={"video": str(src), "telemetry": str(tel_path), "parser": "telemetry-parser normalized_imu",
                    **({"sensor_logger": {"first_gyro_epoch_ns": logger["epoch_ns"],
                                          "gyro_rows_outside_accel": logger["dropped_outside_accel"],
                                          "axes": "phone axes (x right, y up, z out of the screen) = normalised; portrait, rear camera"}}
                       if logger else {}),
                    **({"accel_rate_hz": round(split["accel_rate_hz"], 3),
                        "accel_times": "its own (evenly spread over the file), interpolated at the gyro times"}
                       if logger is None and split["accel_rate_hz"] else {}),
                    "imu_axes": "telemetry-parser normalised; rig.imu.R_camera_imu maps them to OpenCV (rig.imu.source)"},
        notes=("IN-CAMERA STABILISATION: image motion is decoupled from the gyro; sync must not trust a visual offset. "
               if stab["in_camera"] else "") + "No head pose: the camera's gyro is the only motion stream.",
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, {"imu": imu_table(t_ns, gyro, accel)}, video_copier(src, fps))
