"""What every importer shares: errors that name the file, consent, the video copy, checks, metadata.

An importer reads files it does not control, so everything it takes in is checked here before a
byte of the session is written (``write_session`` then writes the whole session atomically):
timestamps must be finite, strictly increasing and inside int64 nanoseconds; values must be
finite and plausible for their stated unit; the video must decode. Each failure raises
``ImportFormatError`` naming the offending file and what to do.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa

from egoworld import __version__
from egoworld.session import SCHEMA_VERSION, SCOPES, STREAM_SCHEMAS, SessionError, validate_consent

INT64_MAX_S = (2**63 - 1) / 1e9  # the largest time (s) that fits t_ns
CONSENT_CHOICES = ("research", "commercial", "none")
GRAVITY = 9.80665


class ImportFormatError(SessionError):
    """An input file that cannot be imported as asked; ``path`` names it, ``problem`` says why."""


# ------------------------------------------------------------------ consent


def consent_record(arg: str | None, subject_id: str) -> tuple[dict | None, str]:
    """``--consent`` → (consent.json record or None, status for session.json).

    ``research`` grants research only; ``commercial`` grants research and commercial (a commercial
    licence is wider); ``none`` writes a record with no scopes (the subject said no); a file path is
    read (JSON or YAML) and validated. Without ``--consent`` nothing is written and the session is
    marked ``unknown`` — the audit then finds no consent record and clears it for nothing.
    """
    today = dt.date.today().isoformat()
    if arg is None:
        return None, "unknown"
    if arg in CONSENT_CHOICES:
        scopes = {"research": ["research"], "commercial": list(SCOPES), "none": []}[arg]
        return ({"subject_id": subject_id, "scopes": scopes, "granted_at": today, "expires_at": None,
                 "revoked_at": None, "notes": f"declared at import with --consent {arg}"}, arg)
    path = Path(arg)
    if not path.exists():
        raise ImportFormatError(path, f"consent file is missing (or use --consent {'|'.join(CONSENT_CHOICES)})")
    try:
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            rec = yaml.safe_load(text)
        else:
            rec = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse failure is the file's fault
        raise ImportFormatError(path, f"consent file is not valid JSON/YAML ({e})") from e
    if not isinstance(rec, dict):
        raise ImportFormatError(path, "consent file must hold one object")
    rec = {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in rec.items()}
    rec.setdefault("notes", f"imported from {path.name}")
    try:
        validate_consent(rec, path)
    except SessionError as e:
        raise ImportFormatError(path, e.problem) from e
    return rec, "file"


# ------------------------------------------------------------------ timestamps and values


def check_times(t_ns: np.ndarray, path: Path, what: str = "timestamps") -> np.ndarray:
    """int64 ns, strictly increasing; raises naming ``path`` otherwise."""
    t = np.asarray(t_ns)
    if t.size == 0:
        raise ImportFormatError(path, f"has no samples ({what})")
    if np.issubdtype(t.dtype, np.floating) and not np.all(np.isfinite(t)):
        i = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ImportFormatError(path, f"{what}: non-finite value at row {i}")
    d = np.diff(t.astype(np.int64))
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0])
        raise ImportFormatError(path, f"{what} are not strictly increasing at row {i + 1} ({t[i]} then {t[i + 1]})")
    return t.astype(np.int64)


def seconds_to_ns(t_s: np.ndarray, path: Path, what: str = "timestamps") -> np.ndarray:
    """Float seconds → int64 ns, refusing values that would overflow (e.g. a unit mistaken for s)."""
    t = np.asarray(t_s, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        i = int(np.flatnonzero(~np.isfinite(t))[0])
        raise ImportFormatError(path, f"{what}: non-finite value at row {i}")
    if np.any(np.abs(t) >= INT64_MAX_S):
        i = int(np.flatnonzero(np.abs(t) >= INT64_MAX_S)[0])
        raise ImportFormatError(path, f"{what}: {t[i]!r} s at row {i} overflows int64 nanoseconds (wrong time unit?)")
    return np.round(t * 1e9).astype(np.int64)


def check_finite(a: np.ndarray, path: Path, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        i = int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).any(axis=1))[0])
        raise ImportFormatError(path, f"{what}: NaN or infinite value at row {i}")
    return a


def check_imu_units(gyro: np.ndarray, accel: np.ndarray, path: Path) -> None:
    """Catch the usual unit mistakes: deg/s taken for rad/s, g taken for m/s², mg, raw counts."""
    g = np.linalg.norm(gyro, axis=1)
    if np.percentile(g, 99) > 35.0:  # 2000 °/s, the largest gyro range on sale
        raise ImportFormatError(path, f"gyro reaches {np.percentile(g, 99):.1f} rad/s (99th percentile): "
                                      "this looks like deg/s or raw counts, not rad/s — state the unit")
    a = np.median(np.linalg.norm(accel, axis=1))
    if not 4.0 <= a <= 20.0:
        raise ImportFormatError(path, f"accelerometer median magnitude is {a:.3g}; gravity alone is 9.81 m/s² — "
                                      "this looks like g, mg or raw counts, not m/s² — state the unit")


def quat_wxyz(q: np.ndarray, path: Path, what: str = "orientation") -> np.ndarray:
    """Unit quaternions (scalar first, qw ≥ 0); refuses ones that are far from unit norm."""
    q = check_finite(q, path, what)
    n = np.linalg.norm(q, axis=1)
    if np.any(np.abs(n - 1.0) > 1e-2):
        i = int(np.flatnonzero(np.abs(n - 1.0) > 1e-2)[0])
        raise ImportFormatError(path, f"{what}: quaternion at row {i} has norm {n[i]:.4f}, not 1")
    q = q / n[:, None]
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)


# ------------------------------------------------------------------ stream tables


def head_pose_table(t_ns: np.ndarray, p: np.ndarray, q_wxyz: np.ndarray) -> pa.Table:
    cols = {"t_ns": t_ns, **{c: p[:, i] for i, c in enumerate(("px", "py", "pz"))},
            **{c: q_wxyz[:, i] for i, c in enumerate(("qw", "qx", "qy", "qz"))}}
    return pa.table(cols, schema=STREAM_SCHEMAS["head_pose"])


def imu_table(t_ns: np.ndarray, gyro: np.ndarray, accel: np.ndarray) -> pa.Table:
    cols = {"t_ns": t_ns, **{c: gyro[:, i] for i, c in enumerate(("gx", "gy", "gz"))},
            **{c: accel[:, i] for i, c in enumerate(("ax", "ay", "az"))}}
    return pa.table(cols, schema=STREAM_SCHEMAS["imu"])


def hands_table(rows: list[tuple[np.ndarray, str, np.ndarray, np.ndarray, np.ndarray]]) -> pa.Table:
    """rows: per side (t_ns (n,), side, wrist_p (n,3), wrist_q wxyz (n,4), keypoints (n,21,3)) → one table."""
    t = np.concatenate([r[0] for r in rows])
    order = np.argsort(t, kind="stable")
    side = np.concatenate([np.full(len(r[0]), r[1]) for r in rows])[order]
    wp = np.concatenate([r[2] for r in rows])[order]
    wq = np.concatenate([r[3] for r in rows])[order]
    kp = np.concatenate([r[4].reshape(len(r[0]), 63) for r in rows])[order]
    cols = {"t_ns": t[order], "side": side, **{f"wrist_{c}": wp[:, i] for i, c in enumerate(("px", "py", "pz"))},
            **{f"wrist_{c}": wq[:, i] for i, c in enumerate(("qw", "qx", "qy", "qz"))},
            "keypoints": pa.FixedSizeListArray.from_arrays(pa.array(kp.ravel()), 63)}
    return pa.table(cols, schema=STREAM_SCHEMAS["hands"])


# ------------------------------------------------------------------ video


def probe_source_video(path: Path) -> dict:
    """Open a source video with PyAV: codec, size, fps, per-frame PTS (ns). Errors name the file."""
    import av

    from egoworld.video import pts_to_ns

    if not path.exists():
        raise ImportFormatError(path, "video file is missing")
    try:
        c = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ImportFormatError(path, f"not a readable video container ({e})") from e
    try:
        if not c.streams.video:
            raise ImportFormatError(path, "contains no video stream")
        s = c.streams.video[0]
        if s.codec_context is None or s.codec_context.name in (None, "", "none"):
            raise ImportFormatError(path, "video codec is unknown to FFmpeg/PyAV — transcode it (e.g. to H.264) first")
        pts = []
        try:
            for packet in c.demux(s):
                if packet.pts is not None:
                    pts.append(pts_to_ns(packet.pts, packet.time_base))
        except av.error.FFmpegError as e:
            raise ImportFormatError(path, f"video stream is corrupt ({e})") from e
        rate = s.average_rate or s.guessed_rate
        return {"codec": s.codec_context.name, "width": s.codec_context.width, "height": s.codec_context.height,
                "fps": float(rate) if rate else None, "pts_ns": np.sort(np.asarray(pts, dtype=np.int64))}
    finally:
        c.close()


def video_copier(src: Path, fps: float, t_shift_ns: int = 0, time_range_ns: tuple[int, int] | None = None,
                 pts_override_ns: np.ndarray | None = None) -> Callable[[Path], None]:
    """A ``write_video_fn`` for ``write_session``: decode ``src`` and re-encode H.264 with its PTS.

    The source PTS *is* the camera clock; ``t_shift_ns`` is added (e.g. so an episode starts at 0),
    ``time_range_ns`` keeps frames with PTS in [a, b) (one episode out of a concatenated file),
    ``pts_override_ns`` replaces the PTS (formats that state frame times in a separate file).
    Any codec FFmpeg decodes is accepted; a decode failure names the file.
    """
    import av

    from egoworld.video import VideoWriter, pts_to_ns

    def write(dst: Path) -> None:
        c = av.open(str(src))
        writer = None
        n = 0
        try:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            try:
                for frame in c.decode(s):
                    t = pts_to_ns(frame.pts, frame.time_base) if frame.pts is not None else None
                    if pts_override_ns is not None:
                        if n >= len(pts_override_ns):
                            break
                        t = int(pts_override_ns[n])
                    elif t is None:
                        raise ImportFormatError(src, f"frame {n} has no timestamp")
                    elif time_range_ns is not None and not (time_range_ns[0] <= t < time_range_ns[1]):
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2  # yuv420p needs even sizes
                    if writer is None:
                        writer = VideoWriter(dst, w, h, fps)
                    writer.write(rgb[:h, :w], t + t_shift_ns)
                    n += 1
            except av.error.FFmpegError as e:
                raise ImportFormatError(src, f"video does not decode ({e}) — unknown or broken codec") from e
            if writer is None:
                raise ImportFormatError(src, "no decodable frames (in the requested range)")
            writer.close(ok=True)
            writer = None
        finally:
            if writer is not None:
                writer.close(ok=False)
            c.close()

    return write


# ------------------------------------------------------------------ metadata


def fov_deg(width: int, height: int, fx: float, fy: float, model: str = "pinhole") -> dict:
    """The field of view the intrinsics imply (an equidistant lens for ``opencv_fisheye``)."""
    if model == "opencv_fisheye":
        return {"h": float(np.degrees(width / fx)), "v": float(np.degrees(height / fy)),
                "d": float(np.degrees(np.hypot(width / fx, height / fy)))}
    return {"h": float(2 * np.degrees(np.arctan(width / 2 / fx))), "v": float(2 * np.degrees(np.arctan(height / 2 / fy))),
            "d": float(2 * np.degrees(np.arctan(np.hypot(width / fx, height / fy) / 2)))}


def intrinsics_from_hfov(width: int, height: int, hfov: float) -> dict:
    fx = width / 2 / np.tan(np.radians(hfov) / 2)
    return {"fx": float(fx), "fy": float(fx), "cx": width / 2, "cy": height / 2}


def build_meta(*, session_id: str, source: str, fps: float, width: int, height: int, duration_s: float,
               camera: dict, streams: dict, clocks: dict, consent_status: str, imu_R: np.ndarray | None = None,
               T_head_camera: np.ndarray | None = None, task: dict | None = None, notes: str = "",
               provenance: dict | None = None, rig_extra: dict | None = None, imu_source: str | None = None) -> dict:
    """session.json for an imported session (docs/session-format.md); unknowns are stated, not guessed."""
    intr = camera["intrinsics"]
    rig = {"fps": float(fps), "width": int(width), "height": int(height), "camera_model": camera.get("camera_model", "pinhole"),
           "intrinsics": {k: float(intr[k]) for k in ("fx", "fy", "cx", "cy")},
           "distortion": [float(x) for x in camera.get("distortion", [0.0] * 5)],
           "fov_deg": fov_deg(width, height, intr["fx"], intr["fy"], camera.get("camera_model", "pinhole")),
           "intrinsics_source": camera.get("source", "unknown"),
           "fov_assumed": bool(camera.get("assumed", camera.get("source", "").startswith("assumed"))),
           "mount": {"T_head_camera": (np.eye(4) if T_head_camera is None else np.asarray(T_head_camera)).tolist()},
           **(rig_extra or {})}
    if imu_R is not None:
        rig["imu"] = {"R_camera_imu": np.asarray(imu_R, dtype=np.float64).tolist(),
                      **({"source": imu_source} if imu_source else {})}
    return {"schema_version": SCHEMA_VERSION, "session_id": session_id, "source": source,
            "created_by": f"egoworld {__version__} import {source}", "duration_s": float(duration_s),
            "rig": rig, "streams": streams, "clocks": {"camera": {"device": "camera", "description": "video PTS; the reference clock"}, **clocks},
            "place": {"id": "unknown"}, "person": {"id": "unknown"}, "objects": [], "task": task or {"id": "unknown"},
            "consent_status": consent_status, "provenance": provenance or {}, "notes": notes}


def session_id_for(src: Path, suffix: str = "") -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", src.stem + suffix)


# ------------------------------------------------------------------ camera files


def load_camera_file(path: Path, width: int | None = None, height: int | None = None) -> dict:
    """Intrinsics from an OpenCV (``camera_matrix``/``K`` + ``dist_coeffs``/``D``, JSON or YAML, also
    OpenCV FileStorage YAML), Kalibr (``cam0: {camera_model, intrinsics [fu fv pu pv],
    distortion_model, distortion_coeffs, resolution, T_cam_imu}``) or EuRoC/ASL (``sensor.yaml``:
    ``intrinsics``, ``distortion_coefficients``, ``resolution``, ``T_BS``) camera file → camera
    dict; the IMU → camera rotation too (``R_camera_imu``, ``extrinsics_source``) when it has one."""
    import yaml

    if not path.exists():
        raise ImportFormatError(path, "camera file is missing")
    text = path.read_text()
    text = re.sub(r"^%YAML.*\n", "", text)
    text = text.replace("!!opencv-matrix", "")
    try:
        obj = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except Exception as e:  # noqa: BLE001
        raise ImportFormatError(path, f"camera file is not valid JSON/YAML ({e})") from e
    if not isinstance(obj, dict):
        raise ImportFormatError(path, "camera file must hold one object")

    def mat(v: Any) -> np.ndarray:
        if isinstance(v, dict) and "data" in v:
            return np.asarray(v["data"], dtype=np.float64).reshape(int(v.get("rows", 3)), int(v.get("cols", -1)))
        return np.asarray(v, dtype=np.float64)

    try:
        return _camera_dict(obj, path, width, height, mat)
    except (TypeError, ValueError, KeyError) as e:
        raise ImportFormatError(path, f"camera file has a malformed entry ({type(e).__name__}: {e})") from e


def _camera_dict(obj: dict, path: Path, width: int | None, height: int | None, mat: Callable[[Any], np.ndarray]) -> dict:
    """The camera dict of a parsed OpenCV / Kalibr / EuRoC camera file (``load_camera_file``)."""
    if "intrinsics" in obj and "T_BS" in obj:  # EuRoC / ASL sensor.yaml (cam0/sensor.yaml)
        fu, fv, pu, pv = [float(x) for x in obj["intrinsics"]]
        dist_model = str(obj.get("distortion_model", "radial-tangential"))
        d = [float(x) for x in obj.get("distortion_coefficients", [])]
        if dist_model in ("equidistant", "fisheye"):
            model, dist = "opencv_fisheye", (d + [0.0] * 4)[:4] + [0.0]
        elif dist_model in ("radial-tangential", "radtan", "none"):
            model, dist = "pinhole" if not any(d) else "opencv", (d + [0.0] * 5)[:5]
        else:
            raise ImportFormatError(path, f"EuRoC distortion_model {dist_model!r} is not supported (radial-tangential, equidistant)")
        res = obj.get("resolution")
        T_BS = mat(obj["T_BS"]).reshape(4, 4)  # the camera's pose in the body frame, which EuRoC puts at the IMU
        out = {"intrinsics": {"fx": fu, "fy": fv, "cx": pu, "cy": pv}, "distortion": dist, "camera_model": model,
               "source": f"euroc:{path.name}", "T_cam_imu": np.linalg.inv(T_BS),
               "extrinsics_source": f"{path.name} T_BS inverted (EuRoC's body frame is its IMU's)"}
    elif "cam0" in obj:  # Kalibr camchain
        cam = obj["cam0"]
        fu, fv, pu, pv = [float(x) for x in cam["intrinsics"]]
        dist_model = cam.get("distortion_model", "radtan")
        d = [float(x) for x in cam.get("distortion_coeffs", [])]
        if dist_model == "equidistant":
            model, dist = "opencv_fisheye", (d + [0.0] * 4)[:4] + [0.0]
        elif dist_model in ("radtan", "none"):
            model, dist = "pinhole" if not any(d) else "opencv", (d + [0.0] * 5)[:5]
        else:
            raise ImportFormatError(path, f"Kalibr distortion_model {dist_model!r} is not supported (radtan, equidistant)")
        if cam.get("camera_model", "pinhole") != "pinhole":
            raise ImportFormatError(path, f"Kalibr camera_model {cam.get('camera_model')!r} is not supported (pinhole)")
        res = cam.get("resolution")
        out = {"intrinsics": {"fx": fu, "fy": fv, "cx": pu, "cy": pv}, "distortion": dist, "camera_model": model,
               "source": f"kalibr:{path.name}"}
        if "T_cam_imu" in cam:
            out["T_cam_imu"] = mat(cam["T_cam_imu"]).reshape(4, 4)
            out["extrinsics_source"] = f"{path.name} cam0.T_cam_imu (Kalibr)"
    else:
        K = next((obj[k] for k in ("camera_matrix", "K", "intrinsic_matrix", "cameraMatrix") if k in obj), None)
        if K is None:
            raise ImportFormatError(path, "no camera matrix: expected 'camera_matrix'/'K' (OpenCV), 'cam0' (Kalibr) or "
                                          "'intrinsics' + 'T_BS' (EuRoC sensor.yaml)")
        K = mat(K).reshape(3, 3)
        D = next((obj[k] for k in ("dist_coeffs", "distortion_coefficients", "D", "dist", "distCoeffs") if k in obj), [0.0] * 5)
        d = [float(x) for x in mat(D).ravel()]
        fisheye = str(obj.get("distortion_model", obj.get("model", ""))).lower() in ("fisheye", "equidistant", "opencv_fisheye")
        model = "opencv_fisheye" if fisheye else ("opencv" if any(d) else "pinhole")
        dist = (d + [0.0] * 4)[:4] + [0.0] if fisheye else (d + [0.0] * 5)[:5]
        out = {"intrinsics": {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}, "distortion": dist,
               "camera_model": model, "source": f"opencv:{path.name}"}
        res = [obj.get("image_width", obj.get("width")), obj.get("image_height", obj.get("height"))]
        res = res if all(res) else None
    if res and width and height and (int(res[0]), int(res[1])) != (width, height):
        s = width / float(res[0])
        if abs(height / float(res[1]) - s) > 1e-3:
            raise ImportFormatError(path, f"calibrated for {res[0]}×{res[1]} but the video is {width}×{height} (different aspect)")
        out["intrinsics"] = {k: v * s for k, v in out["intrinsics"].items()}
    for k, v in out["intrinsics"].items():
        if not np.isfinite(v) or (k in ("fx", "fy") and v <= 0):
            raise ImportFormatError(path, f"intrinsics.{k} = {v!r} is not a positive finite number")
    if "T_cam_imu" in out:
        out["R_camera_imu"] = check_rotation(np.asarray(out["T_cam_imu"], dtype=np.float64)[:3, :3], path, "T_cam_imu")
    return out


def check_rotation(R: np.ndarray, path: Path, what: str) -> np.ndarray:
    """A 3×3 rotation (orthonormal, det +1 within 1e-3), re-orthonormalised; else an error naming the file."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ImportFormatError(path, f"{what}: expected a finite 3×3 rotation, got shape {R.shape}")
    if np.max(np.abs(R @ R.T - np.eye(3))) > 1e-3 or abs(np.linalg.det(R) - 1.0) > 1e-3:
        raise ImportFormatError(path, f"{what} is not a rotation (RRᵀ ≠ I or det ≠ +1): {np.round(R, 4).tolist()}")
    u, _, vt = np.linalg.svd(R)
    return u @ vt


def parse_map(spec: Iterable[str] | None, path: Path | None = None) -> dict[str, str]:
    """``t=timestamp,gx=gyro_x`` (repeatable) → {ours: theirs}."""
    out: dict[str, str] = {}
    for item in spec or []:
        for part in filter(None, (p.strip() for p in item.split(","))):
            if "=" not in part:
                raise ImportFormatError(path or Path("--map"), f"--map entry {part!r} is not ours=theirs")
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def wrist_frame_from_keypoints(kp: np.ndarray, side: str) -> np.ndarray:
    """Our wrist orientation (wxyz) from 21 world keypoints (n, 21, 3), the egoworld/body.py convention:
    x wrist → middle MCP, y toward the thumb side (right hand; away from it for the left), z = x × y
    (out of the back of the hand). Used when a format's joint frames use other axes."""
    from scipy.spatial.transform import Rotation

    from egoworld.body import KEYPOINT_NAMES

    i_w, i_m = 0, KEYPOINT_NAMES.index("middle_mcp")
    i_i, i_l = KEYPOINT_NAMES.index("index_mcp"), KEYPOINT_NAMES.index("little_mcp")
    x = kp[:, i_m] - kp[:, i_w]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    v = kp[:, i_i] - kp[:, i_l] if side == "right" else kp[:, i_l] - kp[:, i_i]
    y = v - np.sum(v * x, axis=1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    z = np.cross(x, y)
    q = Rotation.from_matrix(np.stack([x, y, z], axis=2)).as_quat(scalar_first=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)
