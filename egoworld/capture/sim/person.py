"""Scripted people: purposeful, varied behaviour expressed only through the control.

A person is a generator of per-frame controls that looks at the true state between frames:
look around, walk up to the table, reach, manipulate, make mistakes and retry, and play freely
(so the action space is covered, not just one motion). Every move is a minimum-jerk segment
toward a target pose, plus the person's head bob, tremor and speed, clipped to the control
limits — the same control a planner or a policy would send.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from scipy.spatial.transform import Rotation as R
from scipy.spatial.transform import Slerp

from egoworld.actions import CONTROL_HIGH, BodyPose, clip_control, control_between
from egoworld.capture.sim.catalog import Person
from egoworld.capture.sim.scene import CONTAINER_WALL, Layout
from egoworld.capture.sim.simulator import Simulator
from egoworld.capture.sim.tasks import TaskState

UP = np.array([0.0, 0.0, 1.0])


def look_quat(eye: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Camera (OpenCV axes, no roll) at ``eye`` looking at ``point``, as wxyz."""
    z = point - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, UP)
    x = x / max(np.linalg.norm(x), 1e-9)
    y = np.cross(z, x)
    return R.from_matrix(np.stack([x, y, z], axis=1)).as_quat(scalar_first=True)


def palm_down(yaw: float, tilt: float = 0.0) -> np.ndarray:
    """Wrist frame with the palm facing down, fingers toward heading ``yaw``, pitched down by ``tilt``."""
    x = np.array([np.cos(yaw) * np.cos(tilt), np.sin(yaw) * np.cos(tilt), -np.sin(tilt)])
    y = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    return R.from_matrix(np.stack([x, y, np.cross(x, y)], axis=1)).as_quat(scalar_first=True)


def palm_facing(u: np.ndarray) -> np.ndarray:
    """Wrist frame for pushing along horizontal ``u``: fingers down, palm toward ``u``."""
    x = np.array([0.0, 0.0, -1.0])
    z = -np.array([u[0], u[1], 0.0]) / np.linalg.norm(u[:2])
    return R.from_matrix(np.stack([x, np.cross(z, x), z], axis=1)).as_quat(scalar_first=True)


def minjerk(s: np.ndarray | float) -> np.ndarray | float:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


# What a person does at the table once there. ``task`` is the scripted task (with its own mistakes
# and retries, ending with the hands withdrawn); the rest are play and failure, recorded as
# first-class behaviour because a model predicts confidently and wrongly where it has seen nothing:
# a planner proposes exactly the actions a task-only recording never shows.
BEHAVIOURS = ("task", "reach", "poke", "knots", "withdraw", "idle")
MIXES: dict[str, dict[str, float] | None] = {
    "task": None,  # the task once, then free play and looking around (every session a scripted success)
    "play": {"task": 0.3, "reach": 0.2, "poke": 0.15, "knots": 0.2, "withdraw": 0.08, "idle": 0.07},
}
KNOT_FRAMES = 3  # a random knot holds one control this many frames (the planner's default cadence)
KNOT_SCALE = 0.5  # share of the wrist speed limit a random knot may use (the planner's default)


def parse_mix(spec: str) -> dict[str, float] | None:
    """A named mix (``task``, ``play``) or weights ``task=0.3,knots=0.7`` → normalised weights (None: task only)."""
    spec = spec.strip()
    if spec in MIXES:
        return MIXES[spec]
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in BEHAVIOURS or not value:
            raise ValueError(f"behaviour mix {spec!r}: expected a named mix ({', '.join(MIXES)}) or "
                             f"name=weight pairs over {', '.join(BEHAVIOURS)}")
        weights[name] = float(value)
    total = sum(weights.values())
    if total <= 0 or min(weights.values()) < 0:
        raise ValueError(f"behaviour mix {spec!r}: weights must be ≥ 0 and not all 0")
    return {k: v / total for k, v in weights.items()}


class ScriptedPerson:
    """One person doing one task in one room; ``controls()`` yields a control per frame forever."""

    def __init__(self, sim: Simulator, spec: Person, task: TaskState, layout: Layout, rng: np.random.Generator,
                 mix: dict[str, float] | None = None, at_table: bool = False) -> None:
        self.sim, self.spec, self.task, self.layout, self.rng = sim, spec, task, layout, rng
        self.mix = mix
        self.at_table = at_table  # the session starts at the table in the ready pose: no walk up
        self.frames_by_behaviour: dict[str, int] = {}
        self.fps = sim.fps
        self.th = task.place.table_height
        self.ty = task.place.table_half[1]
        self.s = spec.hand_scale
        self.frame = 0
        self.log: list[tuple[int, str]] = []
        self._noise = np.zeros((3, 3))
        self.dominant = 1 if spec.handedness == "right" else 0

    # -- poses -------------------------------------------------------------------------------
    def start_pose(self) -> tuple[BodyPose, np.ndarray]:
        """Standing at the layout's start, hands at the sides, looking toward the table — or, with
        ``at_table``, already at the table in the ready pose (a capture of the workspace alone)."""
        if self.at_table:
            head, look, wp, wq, g = self.ready_pose(self.focus_x())
            return BodyPose(head, look_quat(head, look), wp, wq), g
        x, y, _ = self.layout.start
        head = np.array([x, y, self.spec.eye_height])
        q = look_quat(head, np.array([0.0, 0.0, self.th]))
        wp = np.stack([self._rest(head, s) for s in range(2)])
        wq = np.stack([palm_down(np.pi / 2 + (0.35 if s == 0 else -0.35), 1.1) for s in range(2)])
        return BodyPose(head, q, wp, wq), np.full(2, 0.15)

    def _rest(self, head: np.ndarray, side: int) -> np.ndarray:
        return head + np.array([(-1 if side == 0 else 1) * 0.2, 0.12, -0.68])

    def _wrist_for_palm(self, palm_center: np.ndarray, q: np.ndarray) -> np.ndarray:
        return palm_center - R.from_quat(q, scalar_first=True).apply([0.045 * self.s, 0.0, 0.0])

    def work_head(self, x: float) -> np.ndarray:
        """Where the eyes go while working: at the table's edge, leaning over it (taller people lean more)."""
        return np.array([np.clip(x, -0.2, 0.2), -self.ty - 0.14, max(self.th + 0.5, self.spec.eye_height - 0.3)])

    # -- the one primitive -------------------------------------------------------------------
    def move(self, seconds: float, head_p=None, look=None, head_q=None, wrists=None, grips=None, walk=False) -> Iterator[np.ndarray]:
        """Min-jerk move of any effectors to targets over ``seconds`` (scaled by the person's speed)."""
        wrists, grips = wrists or {}, grips or {}
        n = max(2, int(round(seconds / self.spec.speed * self.fps)))
        start = self.sim.body_pose()
        g0 = self.sim.grips.copy()
        hp1 = start.head_p if head_p is None else np.asarray(head_p, dtype=np.float64)
        if look is not None:
            head_q = look_quat(hp1, np.asarray(look, dtype=np.float64))
        hq1 = start.head_q if head_q is None else head_q
        slerp_h = Slerp([0, 1], R.from_quat([start.head_q, hq1], scalar_first=True))
        wp1, wq1, g1 = start.wrist_p.copy(), start.wrist_q.copy(), g0.copy()
        for s, (p, q) in wrists.items():
            wp1[s] = p
            wq1[s] = q if q is not None else start.wrist_q[s]
        for s, g in grips.items():
            g1[s] = g
        carried = [s for s in range(2) if s not in wrists]
        slerp_w = [Slerp([0, 1], R.from_quat([start.wrist_q[s], wq1[s]], scalar_first=True)) for s in range(2)]
        freq = 1.9 * self.spec.speed
        for k in range(1, n + 1):
            u = k / n
            m = minjerk(u)
            hp = start.head_p + m * (hp1 - start.head_p)
            if walk:
                t = k / self.fps
                env = np.sin(np.pi * u)
                hp = hp + env * self.spec.bob * np.array([0.5 * np.sin(np.pi * freq * t), 0.0, abs(np.sin(np.pi * freq * t)) - 0.5])
            self._noise = 0.85 * self._noise + self.rng.normal(0, self.spec.tremor, (3, 3))
            want_wp = start.wrist_p + m * (wp1 - start.wrist_p)
            for s in carried:
                want_wp[s] = start.wrist_p[s] + (hp - start.head_p)
            want = BodyPose(hp + self._noise[0], slerp_h(m).as_quat(scalar_first=True),
                            want_wp + self._noise[1:], np.stack([slerp_w[s](m).as_quat(scalar_first=True) for s in range(2)]))
            g = g0 + (g1 - g0) * min(1.0, 1.6 * m)
            self.frame += 1
            yield clip_control(control_between(self.sim.body_pose(), want, g))

    def mark(self, name: str) -> None:
        self.log.append((self.frame, name))

    # -- behaviours --------------------------------------------------------------------------
    def look_around(self, n: int) -> Iterator[np.ndarray]:
        self.mark("look_around")
        head = self.sim.body_pose().head_p
        for _ in range(n):
            yaw = np.pi / 2 + self.rng.uniform(-1.0, 1.0) * (0.5 + 0.6 * self.spec.restlessness)
            pitch = self.rng.uniform(-0.6, 0.15)
            d = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
            yield from self.move(self.rng.uniform(0.5, 1.1), look=head + d)

    def approach(self, x: float) -> Iterator[np.ndarray]:
        self.mark("approach")
        head = self.sim.body_pose().head_p
        goal = self.work_head(x)
        dist = np.linalg.norm(goal[:2] - head[:2])
        yield from self.move(dist / 0.9, head_p=goal, look=np.array([x, -self.ty + 0.15, self.th]), walk=True)

    def free_play(self, seconds: float) -> Iterator[np.ndarray]:
        """Undirected but natural motion of both hands and the head, above the objects."""
        self.mark("free_play")
        t = 0.0
        head = self.sim.body_pose().head_p
        while t < seconds:
            dur = self.rng.uniform(0.35, 1.0)
            wrists, grips = {}, {}
            for s in range(2):
                if self.rng.random() < 0.8:
                    side = -1 if s == 0 else 1
                    p = np.array([head[0] + side * self.rng.uniform(0.0, 0.35), self.rng.uniform(-self.ty - 0.08, -self.ty + 0.25),
                                  self.th + self.rng.uniform(0.2, 0.45)])
                    q = (R.from_rotvec(self.rng.uniform(-0.7, 0.7, 3)) * R.from_quat(palm_down(np.pi / 2 - side * 0.3, 0.3), scalar_first=True)).as_quat(scalar_first=True)
                    wrists[s] = (p, q)
                    grips[s] = float(self.rng.uniform(0.0, 1.0))
            look = None
            if self.rng.random() < 0.6:
                look = np.array([self.rng.uniform(-0.5, 0.5), self.rng.uniform(-self.ty, self.ty + 1.0), self.th + self.rng.uniform(-0.2, 0.8)])
            yield from self.move(dur, look=look, wrists=wrists, grips=grips)
            t += dur / self.spec.speed

    def retract(self, h: int) -> Iterator[np.ndarray]:
        head = self.sim.body_pose().head_p
        up = self.sim.body_pose().wrist_p[h] + np.array([0, -0.05, 0.12])
        yield from self.move(0.35, wrists={h: (up, None)}, grips={h: 0.1})
        yield from self.move(0.6, wrists={h: (self._rest(head, h), palm_down(np.pi / 2 + (0.35 if h == 0 else -0.35), 1.1))})

    def _after_task(self, h: int) -> Iterator[np.ndarray]:
        """Task-only recordings end every attempt by withdrawing the hand, so "hands pulled in" always
        follows "done" — a shortcut a reward model learns. Under a behaviour mix the hand stays where the
        task left it and withdrawing is a behaviour of its own, drawn whether or not the task succeeded."""
        if self.mix is None:
            yield from self.retract(h)

    def choose_hand(self, x: float) -> int:
        other = 1 - self.dominant
        if (x < -0.1 and other == 0 or x > 0.1 and other == 1) and self.rng.random() < 0.5:
            return other
        return self.dominant

    def push(self) -> Iterator[np.ndarray]:
        spec = self.layout.objects[0][0]
        target = np.asarray(self.layout.target)
        h = self.choose_hand(float(self.task.object_positions()[0, 0]))
        for attempt in range(5):
            self.mark(f"push_attempt_{attempt}")
            c = self.task.object_positions()[0]
            u = target - c[:2]
            if np.linalg.norm(u) < 0.03:
                break
            u = u / np.linalg.norm(u)
            if self.rng.random() < self.spec.mistake_rate:  # a sloppy line, corrected later
                ang = self.rng.choice([-1, 1]) * self.rng.uniform(0.25, 0.45)
                u = np.array([np.cos(ang) * u[0] - np.sin(ang) * u[1], np.sin(ang) * u[0] + np.cos(ang) * u[1]])
            q = palm_facing(u)
            palm = np.array([*(c[:2] - u * (spec.radius + 0.045)), self.th + 0.045 * self.s + 0.008])
            pre = self._wrist_for_palm(palm, q)
            yield from self.move(0.9, look=c, wrists={h: (pre + [0, 0, 0.1], q)}, grips={h: 0.3})
            yield from self.move(0.4, wrists={h: (pre, q)})
            for _ in range(12):
                c = self.task.object_positions()[0]
                d = target - c[:2]
                if np.linalg.norm(d) < 0.025 or self.task.success():
                    break
                wrist = self.sim.body_pose().wrist_p[h]
                palm_now = wrist + R.from_quat(q, scalar_first=True).apply([0.045 * self.s, 0, 0])
                rel = c[:2] - palm_now[:2]
                lateral = abs(rel[0] * u[1] - rel[1] * u[0])
                if lateral > 0.035 or rel @ u < 0:
                    break  # the object slid off the palm's line: come round again
                step = min(np.linalg.norm(d) + 0.01, 0.06)
                yield from self.move(step / 0.15, look=c, wrists={h: (wrist + np.array([*(u * step), 0.0]), q)})
            if self.task.success():
                break
            yield from self.move(0.3, wrists={h: (self.sim.body_pose().wrist_p[h] + [0, 0, 0.1], q)})
        yield from self._after_task(h)

    def open_drawer(self) -> Iterator[np.ndarray]:
        handle = self.sim.data.site_xpos[self.sim._drawer_site].copy()
        h = self.choose_hand(float(handle[0]))
        q = palm_down(np.pi / 2)
        for attempt in range(4):
            self.mark(f"drawer_attempt_{attempt}")
            handle = self.sim.data.site_xpos[self.sim._drawer_site].copy()
            miss = self.rng.random() < self.spec.mistake_rate
            palm = handle + np.array([self.rng.uniform(0.05, 0.08) * (1 if miss else 0), -0.03 - (0.05 if miss else 0), 0.013 * self.s + 0.012])
            wrist = self._wrist_for_palm(palm, q)
            yield from self.move(0.9, look=handle, wrists={h: (wrist + [0, -0.1, 0.06], q)}, grips={h: 0.1})
            yield from self.move(0.45, wrists={h: (wrist, q)})
            yield from self.move(0.3, grips={h: 0.95})
            if self.sim.grasped_name(h) != "drawer":
                yield from self.move(0.3, grips={h: 0.1})
                continue
            yield from self.move(1.1, look=handle + [0, -0.1, 0], wrists={h: (wrist + [0, -0.2, 0], q)})
            yield from self.move(0.3, grips={h: 0.1})
            if self.task.success():
                break
        yield from self._after_task(h)

    def _carry(self, goal: np.ndarray, look: np.ndarray) -> Iterator[np.ndarray]:
        """Pick object 0 and bring its centre above ``goal``; returns with it released."""
        spec = self.layout.objects[0][0]
        for attempt in range(5):
            self.mark(f"pick_attempt_{attempt}")
            c = self.task.object_positions()[0]
            h = self.choose_hand(float(c[0]))
            q = palm_down(np.pi / 2 + self.rng.uniform(-0.3, 0.3))
            miss = self.rng.random() < self.spec.mistake_rate * 0.5
            off = np.array([self.rng.uniform(0.06, 0.08) * self.rng.choice([-1, 1]), 0, 0]) if miss else np.zeros(3)
            palm = c + off + np.array([0, 0, spec.half_height + 0.013 * self.s + 0.006])
            wrist = self._wrist_for_palm(palm, q)
            yield from self.move(0.9, look=c, wrists={h: (wrist + [0, -0.03, 0.1], q)}, grips={h: 0.15})
            yield from self.move(0.45, wrists={h: (wrist, q)})
            yield from self.move(0.3, grips={h: 0.95})
            if self.sim.grasped_name(h) != "obj0":
                yield from self.move(0.3, wrists={h: (wrist + [0, 0, 0.05], q)})
                yield from self.move(0.3, grips={h: 0.1})
                continue
            lift = self.sim.body_pose().wrist_p[h] + [0, 0, 0.14]
            yield from self.move(0.5, wrists={h: (lift, q)})
            offset = self.sim.body_pose().wrist_p[h] - self.task.object_positions()[0]
            carry_z = max(goal[2] + 0.06, self.task.object_positions()[0, 2])
            above = np.array([goal[0], goal[1], carry_z]) + offset
            if self.rng.random() < self.spec.mistake_rate * 0.4:  # drops it on the way
                half = (lift + above) / 2
                yield from self.move(0.5, look=look, wrists={h: (half, q)})
                yield from self.move(0.25, grips={h: 0.1})
                yield from self.move(0.4, wrists={h: (half + [0, 0, 0.08], q)})
                continue
            yield from self.move(0.9, look=look, wrists={h: (above, q)})
            yield from self.move(0.4, wrists={h: (goal + offset, q)})
            yield from self.move(0.25, grips={h: 0.1})
            yield from self.move(0.4, wrists={h: (goal + offset + [0, 0, 0.1], q)})
            if self.task.success():
                break
        yield from self._after_task(h)

    def pick_place(self) -> Iterator[np.ndarray]:
        spec = self.layout.objects[0][0]
        bx, by = self.layout.container
        goal = np.array([bx, by, self.th + CONTAINER_WALL + spec.half_height + 0.02])
        yield from self._carry(goal, np.array([bx, by, self.th]))

    def stack(self) -> Iterator[np.ndarray]:
        top, base = self.layout.objects[0][0], self.layout.objects[1][0]
        b = self.task.object_positions()[1]
        goal = b + np.array([0, 0, base.half_height + top.half_height + 0.012])
        yield from self._carry(goal, b)

    # -- play and failure (the behaviour mix) --------------------------------------------------
    def ready_pose(self, x: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Standing at the table, looking at the props, both hands raised and open above its near edge:
        ``(head_p, look_at, wrist_p (2, 3), wrist_q (2, 4), grips (2,))``. Closed-loop episodes start here."""
        head = self.work_head(x)
        look = np.array([x, -self.ty + 0.15, self.th])
        wp = np.array([[head[0] - 0.18, -self.ty - 0.02, self.th + 0.2], [head[0] + 0.18, -self.ty - 0.02, self.th + 0.2]])
        wq = np.stack([palm_down(np.pi / 2 + 0.3), palm_down(np.pi / 2 - 0.3)])
        return head, look, wp, wq, np.full(2, 0.1)

    def focus_x(self) -> float:
        objs = self.task.object_positions()
        return float(np.mean(objs[:2, 0])) if len(objs) else 0.0

    def ready(self) -> Iterator[np.ndarray]:
        head, look, wp, wq, g = self.ready_pose(self.focus_x())
        yield from self.move(self.rng.uniform(0.5, 0.9), head_p=head, look=look,
                             wrists={0: (wp[0], wq[0]), 1: (wp[1], wq[1])}, grips={0: g[0], 1: g[1]})

    def _near_object(self) -> np.ndarray:
        """A random prop's centre (the task's own objects more often than a distractor)."""
        objs = self.task.object_positions()
        n = len(objs)
        k = 0 if n == 1 or self.rng.random() < 0.6 else int(self.rng.integers(n))
        return objs[k].copy()

    def reach(self) -> Iterator[np.ndarray]:
        """Exploratory reaching: a hand goes to a point around a prop, grip anywhere, and pauses."""
        h = int(self.rng.integers(2))
        for _ in range(int(self.rng.integers(1, 4))):
            c = self._near_object()
            p = c + np.array([self.rng.uniform(-0.12, 0.12), self.rng.uniform(-0.12, 0.1), self.rng.uniform(0.0, 0.15)])
            q = palm_down(np.pi / 2 + self.rng.uniform(-0.5, 0.5), self.rng.uniform(0.0, 0.6))
            yield from self.move(self.rng.uniform(0.5, 1.1), look=c if self.rng.random() < 0.5 else None,
                                 wrists={h: (self._wrist_for_palm(p, q), q)}, grips={h: float(self.rng.uniform(0, 1))})
            yield from self.move(self.rng.uniform(0.1, 0.4))

    def poke(self) -> Iterator[np.ndarray]:
        """A sweep of the palm along a random direction past a prop — it may move it, or miss it."""
        h = int(self.rng.integers(2))
        c = self._near_object()
        ang = self.rng.uniform(-np.pi, np.pi)
        u = np.array([np.cos(ang), np.sin(ang)])
        q = palm_facing(u)
        miss = self.rng.uniform(-0.07, 0.07)
        start = np.array([*(c[:2] - u * 0.09 + miss * np.array([-u[1], u[0]])), self.th + 0.045 * self.s + 0.008])
        wrist = self._wrist_for_palm(start, q)
        yield from self.move(self.rng.uniform(0.6, 1.0), look=c, wrists={h: (wrist + [0, 0, 0.08], q)}, grips={h: 0.3})
        yield from self.move(0.35, wrists={h: (wrist, q)})
        sweep = self.rng.uniform(0.05, 0.2)
        yield from self.move(sweep / self.rng.uniform(0.12, 0.3), wrists={h: (wrist + np.array([*(u * sweep), 0.0]), q)})
        yield from self.move(0.3, wrists={h: (self.sim.body_pose().wrist_p[h] + [0, 0, 0.1], q)})

    def withdraw(self) -> Iterator[np.ndarray]:
        """Both hands back to the sides without finishing anything (the task is not done by withdrawing)."""
        head = self.sim.body_pose().head_p
        rest = {s: (self._rest(head, s), palm_down(np.pi / 2 + (0.35 if s == 0 else -0.35), 1.1)) for s in range(2)}
        yield from self.move(self.rng.uniform(0.5, 0.9), wrists=rest, grips={0: 0.1, 1: 0.1})
        yield from self.move(self.rng.uniform(0.2, 0.8))

    def idle(self) -> Iterator[np.ndarray]:
        """Hands where they are, for a moment (tremor only)."""
        yield from self.move(self.rng.uniform(0.4, 1.2))

    def knots(self) -> Iterator[np.ndarray]:
        """Random knots, as a planner samples them: each wrist's velocity and grip drawn uniformly and held
        ``KNOT_FRAMES`` frames, head still and wrist orientation kept; a hand about to leave the
        workspace above the table has that component of its velocity reversed."""
        pose = self.sim.body_pose()
        head = pose.head_p
        far = np.abs(pose.wrist_p[:, 2] - (self.th + 0.2)).max() > 0.3
        if far:
            yield from self.ready()
        lo = np.array([head[0] - 0.45, -self.ty - 0.15, self.th + 0.02])
        hi = np.array([head[0] + 0.45, -self.ty + 0.45, self.th + 0.45])
        vmax = KNOT_SCALE * CONTROL_HIGH[6:9]
        for _ in range(int(self.rng.integers(6, 31))):
            pose = self.sim.body_pose()
            rot = R.from_quat(pose.head_q, scalar_first=True)
            v = self.rng.uniform(-1.0, 1.0, (2, 3)) * vmax  # camera axes, per frame
            g = self.rng.uniform(0.0, 1.0, 2)
            for s in range(2):
                w = rot.apply(v[s])
                nxt = pose.wrist_p[s] + KNOT_FRAMES * w
                w = np.where((nxt < lo) | (nxt > hi), -w, w)
                v[s] = rot.inv().apply(w)
            control = np.zeros(20)
            control[6:9], control[12], control[13:16], control[19] = v[0], g[0], v[1], g[1]
            for _ in range(KNOT_FRAMES):
                self.frame += 1
                yield clip_control(control)

    def _play(self) -> Iterator[np.ndarray]:
        """At the table: behaviours drawn from the mix, one after another, counted per frame."""
        names = list(self.mix)
        p = np.array([self.mix[k] for k in names])
        yield from self._counted("ready", self.ready())
        while True:
            kind = names[int(self.rng.choice(len(names), p=p / p.sum()))]
            self.mark(f"play_{kind}")
            gen = getattr(self, self.task.task)() if kind == "task" else getattr(self, kind)()
            yield from self._counted(kind, gen)

    def _counted(self, kind: str, gen: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for c in gen:
            self.frames_by_behaviour[kind] = self.frames_by_behaviour.get(kind, 0) + 1
            yield c

    def _arrive(self) -> Iterator[np.ndarray]:
        """Look around, then walk up to the table unless already there (frames counted as ``arrive``)."""
        x_focus = self.focus_x()
        yield from self._counted("arrive", self.look_around(int(self.rng.integers(1, 3))))
        if not self.at_table:
            yield from self._counted("arrive", self.approach(x_focus))

    def hand_over(self, agent: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Arrive, get ready, then let ``agent`` act (its frames count as ``agent``)."""
        yield from self._arrive()
        yield from self._counted("ready", self.ready())
        self.mark("agent")
        yield from self._counted("agent", (clip_control(np.asarray(c, dtype=np.float64)) for c in agent))

    def controls(self) -> Iterator[np.ndarray]:
        """The whole session's behaviour: a control per frame, forever (the recorder stops it)."""
        if self.mix is not None:
            yield from self._arrive()
            yield from self._play()
            return
        x_focus = self.focus_x()
        yield from self.look_around(int(self.rng.integers(1, 3)))
        yield from self.approach(x_focus)
        if self.rng.random() < 0.35:
            yield from self.free_play(self.rng.uniform(0.8, 2.0))
        self.mark(f"task_{self.task.task}")
        yield from getattr(self, self.task.task)()
        self.mark("after_task")
        while True:
            if self.rng.random() < 0.7:
                yield from self.free_play(self.rng.uniform(1.0, 2.5))
            else:
                yield from self.look_around(1)
