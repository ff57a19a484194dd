"""A rotation-only synthetic session with known clocks, for testing sync without the simulator.

The camera looks at a textured plane at infinity (a panorama), so frame i is the panorama warped
by the homography ``K_pano · R_i · K⁻¹`` — the image motion is pure rotation and exactly known.
Motion streams are sampled at true time and stamped on their own clocks with the same model sync
estimates (``t_stream = (1 + drift)·t + offset``) plus jitter, dropped samples, and optionally a
clock jump. It writes ``truth/clocks.json`` like the simulator does, so evaluation code works on
both. Writing truth is fine here; only estimation code must never read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
from scipy.spatial.transform import Rotation as R

from egoworld.body import SIDES, finger_keypoints
from egoworld.session import STREAM_SCHEMAS, write_session
from egoworld.sync.estimate import stream_time
from egoworld.video import write_video


@dataclass
class SynthConfig:
    """Everything that varies between synthetic sessions (one seed → one session)."""

    seed: int = 0
    seconds: float = 8.0
    fps: float = 30.0
    width: int = 128
    height: int = 128
    hfov_deg: float = 70.0
    imu_hz: float = 200.0
    tracker_hz: float = 60.0
    imu_offset_ms: float = 0.0
    imu_drift_ppm: float = 0.0
    tracker_offset_ms: float = 0.0
    tracker_drift_ppm: float = 0.0
    jitter_ms: float = 0.3
    gyro_noise: float = 0.01  # rad/s per sample
    gyro_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    motion: float = 1.0  # angular speed scale (0 → a static camera)
    texture: bool = True  # False → a featureless grey panorama
    dropped_frames: list[int] = field(default_factory=list)  # nominal frame numbers never written
    drop_rate: float = 0.0  # fraction of motion samples dropped at random
    tracker_jump_ms: float = 0.0  # a step in the tracker clock ...
    tracker_jump_at_s: float = 0.0  # ... at this true time
    t0_s: float = 0.0  # camera clock time of the first frame
    video_gain: float = 1.0  # fraction of the head's rotation the picture shows (< 1: a stabilised camera)
    stabilization: dict | None = None  # written as rig.stabilization (as `egoworld import camera` does)
    imu_only: bool = False  # an action camera: the IMU is the only motion stream (no head_pose, no hands)


def _panorama(rng: np.random.Generator, size: int, textured: bool) -> np.ndarray:
    if not textured:
        return np.full((size, size, 3), 128, np.uint8)
    img = np.zeros((size, size), np.float32)
    for scale in (12, 30, 80):  # blobs at several sizes (≈ 4–25 px in a 128 px frame)
        noise = rng.random((size // scale + 2, size // scale + 2)).astype(np.float32)
        img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) / scale**0.3
    img = (img - img.min()) / (np.ptp(img) + 1e-9)
    rgb = np.stack([img, np.roll(img, 37, 0), np.roll(img, 61, 1)], -1)
    return (rgb * 255).astype(np.uint8)


class _Trajectory:
    """Smooth head rotation: a rotation vector made of a few random sinusoids, plus a slow walk."""

    def __init__(self, rng: np.random.Generator, scale: float) -> None:
        self.freq = rng.uniform(0.3, 1.6, (3, 3))
        self.phase = rng.uniform(0, 2 * np.pi, (3, 3))
        self.amp = rng.uniform(0.04, 0.12, (3, 3)) * scale  # rad per component
        self.amp[2] *= 0.5  # less roll than pan/tilt, as heads do

    def rotvec(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)[..., None, None]
        return np.sum(self.amp * np.sin(2 * np.pi * self.freq * t + self.phase), axis=-1)

    def rotation(self, t: np.ndarray) -> R:
        return R.from_rotvec(self.rotvec(t))

    def position(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return np.stack([0.1 * t, 0.05 * np.sin(t), 1.6 + 0.01 * np.sin(3 * t)], -1)

    def body_rate(self, t: np.ndarray, h: float = 1e-4) -> np.ndarray:
        """Angular velocity in the camera (body) frame: log(R(t-h)ᵀ R(t+h)) / 2h."""
        return (self.rotation(t - h).inv() * self.rotation(t + h)).as_rotvec() / (2 * h)


def _stamp(rng: np.random.Generator, t_true: np.ndarray, offset_ms: float, drift_ppm: float, jitter_ms: float,
           jump_ms: float = 0.0, jump_at: float = 0.0) -> np.ndarray:
    jitter = np.clip(rng.normal(0, jitter_ms * 1e-3, t_true.shape), -3e-3 * jitter_ms, 3e-3 * jitter_ms)
    t = stream_time(t_true, offset_ms * 1e-3, drift_ppm * 1e-6) + jitter
    t = t + np.where(t_true >= jump_at, jump_ms * 1e-3, 0.0)
    ns = np.round(t * 1e9).astype(np.int64)
    if np.any(np.diff(ns) <= 0):
        raise ValueError(f"jitter {jitter_ms} ms is too large for the sample rate: timestamps would reorder")
    return ns


def _keep(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    keep = rng.random(n) >= rate
    keep[[0, -1]] = True
    return keep


def make_session(out: str | Path, cfg: SynthConfig) -> Path:
    """Write one synthetic session folder at ``out``; returns its path."""
    rng = np.random.default_rng(cfg.seed)
    traj = _Trajectory(rng, cfg.motion)
    fx = cfg.width / 2 / np.tan(np.radians(cfg.hfov_deg) / 2)
    K = np.array([[fx, 0, cfg.width / 2], [0, fx, cfg.height / 2], [0, 0, 1.0]])
    pano_size = 1024
    fp = pano_size / 2 / np.tan(np.radians(cfg.hfov_deg + 50) / 2)
    Kp = np.array([[fp, 0, pano_size / 2], [0, fp, pano_size / 2], [0, 0, 1.0]])
    pano = _panorama(rng, pano_size, cfg.texture)

    # Video: camera clock = true time (+ t0); dropped frames are never written.
    n_frames = int(round(cfg.seconds * cfg.fps))
    nominal = np.arange(n_frames)
    written = np.setdiff1d(nominal, np.asarray(cfg.dropped_frames, dtype=int))
    t_frames = written / cfg.fps
    pts_ns = np.round((t_frames + cfg.t0_s) * 1e9).astype(np.int64)
    # In-camera stabilisation counter-rotates the picture: it shows only video_gain of the turn.
    rots = R.from_rotvec(cfg.video_gain * traj.rotvec(t_frames + cfg.t0_s))

    def frames():
        for r in rots:
            H = Kp @ r.as_matrix() @ np.linalg.inv(K)  # frame pixel → panorama pixel
            yield cv2.warpPerspective(pano, H, (cfg.width, cfg.height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                      borderMode=cv2.BORDER_REFLECT)

    def write(path: Path) -> None:
        write_video(path, frames(), pts_ns, cfg.fps)

    span = cfg.seconds + 0.6  # motion streams run a little past the video on both ends
    streams: dict[str, pa.Table] = {}
    # IMU (own clock): gyro = body rate + noise + bias; accel = gravity only (not used by sync).
    t_imu = np.arange(-0.3, span, 1 / cfg.imu_hz)
    t_imu = t_imu[_keep(rng, len(t_imu), cfg.drop_rate)]
    gyro = traj.body_rate(t_imu + cfg.t0_s) + rng.normal(0, cfg.gyro_noise, (len(t_imu), 3)) + np.asarray(cfg.gyro_bias)
    accel = -traj.rotation(t_imu + cfg.t0_s).inv().apply([0, 0, -9.81])
    t_imu_ns = _stamp(rng, t_imu + cfg.t0_s, cfg.imu_offset_ms, cfg.imu_drift_ppm, cfg.jitter_ms)
    streams["imu"] = pa.table({"t_ns": t_imu_ns, **{k: gyro[:, i] for i, k in enumerate(("gx", "gy", "gz"))},
                               **{k: accel[:, i] for i, k in enumerate(("ax", "ay", "az"))}}, schema=STREAM_SCHEMAS["imu"])

    # Head tracker (tracker clock) and hands (same device → same clock).
    t_trk = np.arange(-0.3, span, 1 / cfg.tracker_hz)
    t_trk = t_trk[_keep(rng, len(t_trk), cfg.drop_rate)]
    r_head = traj.rotation(t_trk + cfg.t0_s)
    p_head = traj.position(t_trk + cfg.t0_s)
    q_head = r_head.as_quat(scalar_first=True)
    t_trk_ns = _stamp(rng, t_trk + cfg.t0_s, cfg.tracker_offset_ms, cfg.tracker_drift_ppm, cfg.jitter_ms,
                      cfg.tracker_jump_ms, cfg.tracker_jump_at_s + cfg.t0_s)
    streams["head_pose"] = pa.table({"t_ns": t_trk_ns, **{k: p_head[:, i] for i, k in enumerate(("px", "py", "pz"))},
                                     **{k: q_head[:, i] for i, k in enumerate(("qw", "qx", "qy", "qz"))}},
                                    schema=STREAM_SCHEMAS["head_pose"])
    rows: dict[str, list] = {c: [] for c in STREAM_SCHEMAS["hands"].names}
    for s, side in enumerate(SIDES):
        sign = -1.0 if side == "left" else 1.0
        wob = 0.05 * np.sin(2.0 * t_trk[:, None] + s + np.arange(3))
        wrist_cam = np.array([0.15 * sign, 0.25, 0.45]) + wob  # in front of and below the eyes
        p_w = p_head + r_head.apply(wrist_cam)
        r_w = r_head * R.from_euler("xyz", np.c_[0.3 * np.sin(t_trk + s), np.full_like(t_trk, -1.2), 0.2 * np.cos(t_trk)])
        grip = 0.5 + 0.5 * np.sin(1.3 * t_trk + s)
        kp = finger_keypoints(grip, 1.0, side)
        kp_world = p_w[:, None, :] + np.einsum("nij,nkj->nki", r_w.as_matrix(), kp)
        q_w = r_w.as_quat(scalar_first=True)
        rows["t_ns"].append(t_trk_ns)
        rows["side"].append(np.full(len(t_trk), side))
        for i, k in enumerate(("px", "py", "pz")):
            rows[f"wrist_{k}"].append(p_w[:, i])
        for i, k in enumerate(("qw", "qx", "qy", "qz")):
            rows[f"wrist_{k}"].append(q_w[:, i])
        rows["keypoints"].append(kp_world.reshape(len(t_trk), 63))
    order = np.argsort(np.concatenate(rows["t_ns"]), kind="stable")
    cols = {k: np.concatenate(v)[order] for k, v in rows.items()}
    cols["keypoints"] = pa.FixedSizeListArray.from_arrays(pa.array(cols["keypoints"].ravel()), 63)
    streams["hands"] = pa.table(cols, schema=STREAM_SCHEMAS["hands"])

    if cfg.imu_only:
        streams = {"imu": streams["imu"]}
    meta = {
        "schema_version": 1,
        "session_id": Path(out).name,
        "source": "synthetic",
        "created_by": "egoworld.sync.synthetic",
        "duration_s": cfg.seconds,
        "rig": {
            "fps": cfg.fps, "width": cfg.width, "height": cfg.height, "camera_model": "pinhole",
            "intrinsics": {"fx": fx, "fy": fx, "cx": cfg.width / 2, "cy": cfg.height / 2},
            "distortion": [0.0] * 5,
            "fov_deg": {"h": cfg.hfov_deg, "v": cfg.hfov_deg, "d": cfg.hfov_deg},
            "mount": {"T_head_camera": np.eye(4).tolist()},
            "imu": {"R_camera_imu": np.eye(3).tolist()},
        },
        "streams": {k: v for k, v in {
            "head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker", "rate_hz": cfg.tracker_hz},
            "hands": {"file": "motion/hands.parquet", "clock": "tracker", "rate_hz": cfg.tracker_hz},
            "imu": {"file": "motion/imu.parquet", "clock": "imu", "rate_hz": cfg.imu_hz},
        }.items() if k in streams},
        "clocks": {k: v for k, v in {
            "camera": {"device": "camera", "description": "video PTS"},
            "tracker": {"device": "tracker", "description": "head and hand tracker"},
            "imu": {"device": "imu", "description": "gyro + accelerometer"},
        }.items() if k != "tracker" or not cfg.imu_only},
        "place": {"id": "panorama"}, "person": {"id": "synthetic"}, "objects": [], "task": {"id": "look_around"},
        "notes": "rotation-only synthetic session (egoworld.sync.synthetic)",
    }
    truth = {
        "streams": {
            "imu": {"clock": "imu", "offset_ms": cfg.imu_offset_ms, "drift_ppm": cfg.imu_drift_ppm,
                    "jitter_ms": cfg.jitter_ms, "dropped": []},
            **{name: {"clock": "tracker", "offset_ms": cfg.tracker_offset_ms, "drift_ppm": cfg.tracker_drift_ppm,
                      "jitter_ms": cfg.jitter_ms, "dropped": [],
                      **({"jump_ms": cfg.tracker_jump_ms, "jump_at_s": cfg.tracker_jump_at_s + cfg.t0_s}
                         if cfg.tracker_jump_ms else {})}
               for name in ("head_pose", "hands") if name in streams},
        },
        "video": {"dropped_frames": sorted(int(i) for i in cfg.dropped_frames)},
    }
    if cfg.stabilization is not None:
        meta["rig"]["stabilization"] = cfg.stabilization
    return write_session(out, meta, None, streams, write, extra={"truth/clocks.json": truth})
