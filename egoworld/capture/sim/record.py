"""Record sessions from the simulator: render the head camera, sample every sensor on its own clock.

The body's motion is kept at the physics rate (600 Hz by default); each sensor then samples it
at its own ticks (true times from its clock model), with noise, jitter and dropped samples.
The ground truth (clocks, per-frame simulator state, controls, the scene) goes to ``truth/``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import pyarrow as pa
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation as R
from scipy.spatial.transform import RotationSpline

from egoworld import __version__
from egoworld._atomic import write_json, write_parquet
from egoworld.body import SEGMENT_LENGTHS, SIDES, finger_keypoints
from egoworld.capture.sim.catalog import OBJECTS, TASKS, person as person_spec, place as place_spec
from egoworld.capture.sim.clocks import ClockSpec, random_clock, sample_clock
from egoworld.capture.sim.person import ScriptedPerson, parse_mix
from egoworld.capture.sim.scene import Layout, build_mjcf
from egoworld.capture.sim.simulator import Kinematics, Simulator
from egoworld.capture.sim.tasks import TaskState, make_layout
from egoworld.session import SCHEMA_VERSION, STREAM_SCHEMAS, SessionWriter, write_tables
from egoworld.video import VideoWriter

GRAVITY = np.array([0.0, 0.0, -9.81])
CONSENT_KINDS = ("full", "research", "expired", "revoked", "none")


@dataclass
class SessionConfig:
    """Everything that decides one simulated session (same config → same files)."""

    index: int = 0
    seed: int = 0
    place: int = 0
    person: int = 0
    task: str = "push"
    seconds: float = 20.0
    fps: float = 30.0
    width: int = 256
    height: int = 256
    fov_deg: float = 90.0  # vertical field of view of the head camera
    substeps: int = 20  # physics steps per frame (600 Hz at 30 fps)
    imu_hz: float = 200.0
    head_hz: float = 120.0
    hands_hz: float = 60.0
    offset_ms: float | None = None  # None: drawn per clock from ±500 ms
    drift_ppm: float | None = None  # None: drawn per clock from ±1000 ppm
    jitter_ms: float = 0.3
    drop_rate: float = 0.004
    frame_drop_rate: float = 0.002
    consent: str = "full"
    objects: tuple[int, ...] | None = None  # restrict to these catalogue objects
    crf: int = 18
    light_scale: float = 1.0  # <1 dims every light (a badly lit capture)
    mix: str = "task"  # what the person does at the table: ``task``, ``play`` or weights (person.parse_mix)
    start: str = "walk"  # walk: from across the room to the table; table: already there, hands ready (workspace only)
    # Head tracking (VIO) is smooth: sub-millimetre white noise on top of a slow random-walk drift;
    # hand tracking jitters more; the IMU has white noise plus a constant bias.
    noise: dict = field(default_factory=lambda: {"head_pos_m": 0.0003, "head_rot_rad": 0.0005, "head_drift_m_per_s": 0.002,
                                                  "head_drift_rad_per_s": 0.002, "gyro_rad_s": 0.01, "accel_m_s2": 0.05,
                                                  "hand_m": 0.002})

    @property
    def session_id(self) -> str:
        return f"s{self.seed:03d}-{self.index:04d}_{self.task}_place{self.place:02d}_person{self.person:02d}"


def _trajectory(kins: list[Kinematics], first: Kinematics) -> dict[str, np.ndarray]:
    cat = lambda k: np.concatenate([getattr(first, k)] + [getattr(x, k) for x in kins])  # noqa: E731
    return {k: cat(k) for k in ("head_p", "head_q", "wrist_p", "wrist_q", "grip")}


def _consent(kind: str, subject: str) -> dict | None:
    if kind not in CONSENT_KINDS:
        raise ValueError(f"consent must be one of {CONSENT_KINDS}, got {kind!r}")
    if kind == "none":
        return None
    return {
        "subject_id": subject,
        "scopes": ["research"] if kind == "research" else ["research", "commercial"],
        "granted_at": "2026-01-15",
        "expires_at": "2026-06-30" if kind == "expired" else "2031-12-31",
        "revoked_at": "2026-09-01" if kind == "revoked" else None,
        "notes": f"simulated subject; consent kind '{kind}'",
    }


def _streams(traj: dict, t_traj: np.ndarray, cfg: SessionConfig, clocks: dict[str, ClockSpec], hand_scale: float,
             rng: np.random.Generator, t_end: float) -> tuple[dict[str, pa.Table], dict]:
    """Sample head pose, IMU and hands on their clocks from the physics-rate trajectory."""
    nz = cfg.noise
    head_rot = R.from_quat(traj["head_q"], scalar_first=True)
    head_rs, head_ps = RotationSpline(t_traj, head_rot), CubicSpline(t_traj, traj["head_p"])
    truth = {}
    out = {}
    # head pose (tracker clock)
    s = sample_clock(clocks["tracker"], cfg.head_hz, t_end, rng)
    n = len(s.t_true)
    walk = lambda rate: np.cumsum(rng.normal(0, rate * np.sqrt(1.0 / cfg.head_hz), (n, 3)), axis=0)  # noqa: E731
    p = head_ps(s.t_true) + walk(nz["head_drift_m_per_s"]) + rng.normal(0, nz["head_pos_m"], (n, 3))
    rot_err = walk(nz["head_drift_rad_per_s"]) + rng.normal(0, nz["head_rot_rad"], (n, 3))
    q = (head_rs(s.t_true) * R.from_rotvec(rot_err)).as_quat(scalar_first=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    cols = {"t_ns": s.t_ns, **{c: p[:, i] for i, c in enumerate(("px", "py", "pz"))}, **{c: q[:, i] for i, c in enumerate(("qw", "qx", "qy", "qz"))}}
    out["head_pose"] = pa.table(cols, schema=STREAM_SCHEMAS["head_pose"])
    truth["head_pose"] = {"clock": "tracker", "dropped": s.dropped}
    # IMU (own clock): body-frame angular rate, specific force in the camera/IMU frame
    s = sample_clock(clocks["imu"], cfg.imu_hz, t_end, rng)
    gyro_bias = rng.normal(0, 0.003, 3)
    gyro = head_rs(s.t_true, 1) + gyro_bias + rng.normal(0, nz["gyro_rad_s"], (len(s.t_true), 3))
    acc_world = head_ps(s.t_true, 2) - GRAVITY
    accel = head_rs(s.t_true).inv().apply(acc_world) + rng.normal(0, nz["accel_m_s2"], (len(s.t_true), 3))
    cols = {"t_ns": s.t_ns, **{c: gyro[:, i] for i, c in enumerate(("gx", "gy", "gz"))}, **{c: accel[:, i] for i, c in enumerate(("ax", "ay", "az"))}}
    out["imu"] = pa.table(cols, schema=STREAM_SCHEMAS["imu"])
    truth["imu"] = {"clock": "imu", "dropped": s.dropped, "gyro_bias": gyro_bias.tolist()}
    # hands (tracker clock): one row per side per sample, interleaved in time
    s = sample_clock(clocks["tracker"], cfg.hands_hz, t_end, rng)
    rows = []
    for si, side in enumerate(SIDES):
        wp = CubicSpline(t_traj, traj["wrist_p"][:, si])(s.t_true)
        wr = RotationSpline(t_traj, R.from_quat(traj["wrist_q"][:, si], scalar_first=True))(s.t_true)
        grip = np.interp(s.t_true, t_traj, traj["grip"][:, si])
        kp_local = finger_keypoints(grip, hand_scale, side)
        n = len(s.t_true)
        kp = wp[:, None] + wr[np.repeat(np.arange(n), 21)].apply(kp_local.reshape(-1, 3)).reshape(n, 21, 3)
        kp += rng.normal(0, nz["hand_m"], kp.shape)
        wq = wr.as_quat(scalar_first=True)
        wq *= np.where(wq[:, :1] < 0, -1.0, 1.0)
        rows.append((s.t_ns, np.full(n, side), wp + rng.normal(0, nz["hand_m"], wp.shape), wq, kp.reshape(n, 63)))
    order = np.argsort(np.concatenate([r[0] for r in rows]), kind="stable")
    t_ns = np.concatenate([r[0] for r in rows])[order]
    side = np.concatenate([r[1] for r in rows])[order]
    wp = np.concatenate([r[2] for r in rows])[order]
    wq = np.concatenate([r[3] for r in rows])[order]
    kp = np.concatenate([r[4] for r in rows])[order]
    cols = {"t_ns": t_ns, "side": side, **{f"wrist_{c}": wp[:, i] for i, c in enumerate(("px", "py", "pz"))},
            **{f"wrist_{c}": wq[:, i] for i, c in enumerate(("qw", "qx", "qy", "qz"))},
            "keypoints": pa.FixedSizeListArray.from_arrays(pa.array(kp.ravel()), 63)}
    out["hands"] = pa.table(cols, schema=STREAM_SCHEMAS["hands"])
    truth["hands"] = {"clock": "tracker", "dropped": s.dropped}
    return out, truth


def _intrinsics(cfg: SessionConfig) -> dict:
    fy = cfg.height / 2 / np.tan(np.radians(cfg.fov_deg) / 2)
    fx = fy  # square pixels
    fov_h = 2 * np.degrees(np.arctan(cfg.width / 2 / fx))
    fov_d = 2 * np.degrees(np.arctan(np.hypot(cfg.width, cfg.height) / 2 / fx))
    return {"fx": fx, "fy": fy, "cx": cfg.width / 2, "cy": cfg.height / 2, "fov": {"h": fov_h, "v": cfg.fov_deg, "d": fov_d}}


def build_simulator(place_idx: int, person_idx: int, task: str, layout: Layout, cfg: SessionConfig, xml: str | None = None) -> tuple[Simulator, TaskState]:
    pl, pe = place_spec(place_idx), person_spec(person_idx)
    xml = xml or build_mjcf(pl, layout, pe.hand_scale, cfg.fov_deg, 1.0 / (cfg.fps * cfg.substeps), SEGMENT_LENGTHS)
    sim = Simulator(xml, pe.hand_scale, cfg.fps, cfg.substeps, cfg.width, cfg.height)
    return sim, TaskState(task, sim, layout, pl)


@dataclass
class Episode:
    """A freshly set-up simulated episode: the world, its task, the person, and their random streams."""

    sim: Simulator
    task: TaskState
    actor: ScriptedPerson
    layout: Layout
    xml: str
    start: Kinematics
    clocks: dict[str, ClockSpec]
    r_clock: np.random.Generator
    r_noise: np.random.Generator


def setup_episode(cfg: SessionConfig) -> Episode:
    """Build the world for ``cfg`` and place the person at the start (deterministic in cfg)."""
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r} (known: {', '.join(TASKS)})")
    r_layout, r_person, r_clock, r_noise = [np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, cfg.index]).spawn(4)]
    pl, pe = place_spec(cfg.place), person_spec(cfg.person)
    pool = [OBJECTS[i % len(OBJECTS)] for i in cfg.objects] if cfg.objects else None
    layout = make_layout(cfg.task, pl, r_layout, pool)
    xml = build_mjcf(pl, layout, pe.hand_scale, cfg.fov_deg, 1.0 / (cfg.fps * cfg.substeps), SEGMENT_LENGTHS, light_scale=cfg.light_scale)
    sim, task = build_simulator(cfg.place, cfg.person, cfg.task, layout, cfg, xml)
    if cfg.start not in ("walk", "table"):
        raise ValueError(f"start must be 'walk' or 'table', got {cfg.start!r}")
    actor = ScriptedPerson(sim, pe, task, layout, r_person, parse_mix(cfg.mix), at_table=cfg.start == "table")
    pose, grips = actor.start_pose()
    sim.set_body(pose.head_p, pose.head_q, pose.wrist_p, pose.wrist_q, grips)
    mujoco.mj_forward(sim.model, sim.data)
    clocks = {"imu": random_clock("imu", r_clock, cfg.offset_ms, cfg.drift_ppm, cfg.jitter_ms, cfg.drop_rate),
              "tracker": random_clock("tracker", r_clock, cfg.offset_ms, cfg.drift_ppm, cfg.jitter_ms, cfg.drop_rate)}
    start = Kinematics(pose.head_p[None], pose.head_q[None], pose.wrist_p[None], pose.wrist_q[None], grips[None])
    return Episode(sim, task, actor, layout, xml, start, clocks, r_clock, r_noise)


def run_scripted(cfg: SessionConfig) -> dict:
    """Play the scripted person for the session's length without rendering or writing anything.

    Returns when (if ever) the task first succeeded and the final progress — for success rates.
    """
    ep = setup_episode(cfg)
    controller = ep.actor.controls()
    first = None
    for k in range(int(round(cfg.seconds * cfg.fps))):
        if first is None and ep.task.success():
            first = k
        ep.sim.step(next(controller))
    return {"task": cfg.task, "success": first is not None, "success_frame": first, "final_progress": ep.task.progress()}


def capture_session(out_dir: str | Path, cfg: SessionConfig, act: Callable[[Episode], Iterator[np.ndarray]] | None = None,
                    extra_meta: dict | None = None) -> Path:
    """Simulate, render and write one session to ``out_dir/<session_id>``; returns its path.

    ``act``: an agent instead of the scripted person's task — the person arrives (``start``) and gets ready, then
    ``act(episode)`` yields the controls (it may read ``episode.sim`` between frames: the recorder
    steps the simulator after each yield). ``extra_meta`` is added to session.json (e.g. what acted).
    """
    ep = setup_episode(cfg)
    sim, task, actor, layout, xml, clocks, r_clock = ep.sim, ep.task, ep.actor, ep.layout, ep.xml, ep.clocks, ep.r_clock
    pl, pe = place_spec(cfg.place), person_spec(cfg.person)
    n = int(round(cfg.seconds * cfg.fps))
    drop = r_clock.random(n) < cfg.frame_drop_rate
    drop[[0, -1]] = False
    out = Path(out_dir) / cfg.session_id
    kins, frames, controls, success_frame = [], [], [], None
    controller = actor.controls() if act is None else actor.hand_over(act(ep))
    with SessionWriter(out) as tmp:
        with VideoWriter(tmp / "video.mp4", cfg.width, cfg.height, cfg.fps, crf=cfg.crf) as video:
            for k in range(n):
                t_ns = int(round(k / cfg.fps * 1e9))
                row = {"frame": k, "t_true_ns": t_ns, "written": not drop[k], "pts_ns": t_ns if not drop[k] else -1,
                       **task.truth_row(), "sim_state": sim.get_state().tolist()}
                if row["success"] and success_frame is None:
                    success_frame = k
                frames.append(row)
                if not drop[k]:
                    video.write(sim.render(), t_ns)
                control = next(controller)
                controls.append(control)
                kins.append(sim.step(control))
        sim.close()
        traj = _trajectory(kins, ep.start)
        t_traj = np.arange(len(traj["head_p"])) / (cfg.fps * cfg.substeps)
        t_end = (n - 1) / cfg.fps + 0.5 / cfg.fps
        streams, stream_truth = _streams(traj, t_traj, cfg, clocks, pe.hand_scale, ep.r_noise, t_end)
        intr = _intrinsics(cfg)
        behaviour = {"mix": actor.mix or ({"task": 1.0} if act is None else {"agent": 1.0}), "frames": dict(sorted(actor.frames_by_behaviour.items())),
                     "success_frame": success_frame}
        meta = {
            "schema_version": SCHEMA_VERSION, "session_id": cfg.session_id, "source": "sim",
            "created_by": f"egoworld {__version__} capture sim", "duration_s": n / cfg.fps,
            "rig": {"fps": cfg.fps, "width": cfg.width, "height": cfg.height, "camera_model": "pinhole",
                    "intrinsics": {k: intr[k] for k in ("fx", "fy", "cx", "cy")}, "distortion": [0.0] * 5,
                    "fov_deg": intr["fov"], "mount": {"T_head_camera": np.eye(4).tolist(), "where": "forehead, looking forward"},
                    "imu": {"R_camera_imu": np.eye(3).tolist()}, "exposure": "auto", "codec": "h264"},
            "streams": {"head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker", "rate_hz": cfg.head_hz},
                        "imu": {"file": "motion/imu.parquet", "clock": "imu", "rate_hz": cfg.imu_hz},
                        "hands": {"file": "motion/hands.parquet", "clock": "tracker", "rate_hz": cfg.hands_hz}},
            "clocks": {"camera": {"device": "head camera", "description": "video PTS; the reference clock"},
                       "imu": {"device": "IMU", "description": "IMU sample clock"},
                       "tracker": {"device": "headset tracker", "description": "head and hand tracking share this clock"}},
            "place": pl.to_json(), "person": pe.to_json(),
            "objects": [o.to_json() for o, _, _ in layout.objects], "task": {"id": cfg.task, "description": TASK_TEXT[cfg.task]},
            "notes": f"simulated with seed {cfg.seed}, session index {cfg.index}",
        }
        if actor.mix is not None or act is not None:  # what the person did, frame counts per behaviour
            meta["behaviour"] = behaviour
        meta.update(extra_meta or {})
        write_tables(tmp, meta, streams)
        write_json(tmp / "session.json", meta)
        consent = _consent(cfg.consent, pe.id)
        if consent is not None:
            write_json(tmp / "consent.json", consent)
        truth_clocks = {"streams": {k: {**v, **{f: clocks[v["clock"]].to_json()[f] for f in ("offset_ms", "drift_ppm", "jitter_ms")}}
                                    for k, v in stream_truth.items()},
                        "video": {"dropped_frames": [int(i) for i in np.flatnonzero(drop)]},
                        "model": "t_stream = (1 + drift_ppm*1e-6) * t_video + offset_ms*1e-3"}
        write_json(tmp / "truth" / "clocks.json", truth_clocks)
        write_parquet(tmp / "truth" / "frames.parquet", pa.Table.from_pylist(frames))
        ctrl = np.asarray(controls)
        write_parquet(tmp / "truth" / "controls.parquet", pa.table({"frame": np.arange(n), "control": pa.FixedSizeListArray.from_arrays(pa.array(ctrl.ravel()), ctrl.shape[1])}))
        kin_cols = {"t_true_ns": np.round(t_traj * 1e9).astype(np.int64)}
        for key, arr in traj.items():
            flat = arr.reshape(len(arr), -1)
            kin_cols[key] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
        write_parquet(tmp / "truth" / "kinematics.parquet", pa.table(kin_cols))
        write_json(tmp / "truth" / "task.json", {
            "task": cfg.task, "success": success_frame is not None, "success_frame": success_frame,
            "final_success": bool(task.success()), "final_progress": task.progress(),
            "segments": [{"frame": f, "name": s} for f, s in actor.log], "layout": layout.to_json(), "behaviour": behaviour,
            "config": {k: v for k, v in asdict(cfg).items()}, "hand_scale": pe.hand_scale,
        })
        (tmp / "truth" / "scene.xml").write_text(xml)
    return out


TASK_TEXT = {
    "push": "push the object onto the green target",
    "open_drawer": "open the cabinet drawer",
    "pick_place": "pick up the object and put it in the bin",
    "stack": "stack the object on top of the other one",
}


def plan_sessions(n: int, places: int, people: int, tasks: list[str], seed: int, **overrides) -> list[SessionConfig]:
    """n session configs whose places, people and tasks are each as balanced as n allows."""
    rng = np.random.default_rng([seed, 99])
    def balanced(k: int) -> np.ndarray:
        return rng.permutation(np.resize(np.arange(k), n))
    pl, pe, tk = balanced(places), balanced(people), balanced(len(tasks))
    consent = overrides.pop("consent", "full")
    kinds = [consent] * n
    if consent == "mixed":
        kinds = list(rng.choice(CONSENT_KINDS, size=n, p=[0.7, 0.12, 0.06, 0.06, 0.06]))
    return [SessionConfig(index=i, seed=seed, place=int(pl[i]), person=int(pe[i]), task=tasks[int(tk[i])], consent=str(kinds[i]), **overrides)
            for i in range(n)]
