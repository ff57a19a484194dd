"""The tasks: where their props go, when they are done, and how far along they are.

Each task's success test and dense progress read only the true simulator state. Layouts are
drawn from the session's generator so the same seed gives the same room.
"""
from __future__ import annotations

import math

import numpy as np
import mujoco

from egoworld.capture.sim.catalog import OBJECTS, TASKS, ObjectSpec, Place
from egoworld.capture.sim.scene import CABINET_HALF, CONTAINER_INNER, CONTAINER_WALL, DRAWER_TRAVEL, Layout
from egoworld.capture.sim.simulator import Simulator

PUSH_TOLERANCE = 0.05
REACH_RANGE = 0.6  # metres: progress's reach term falls from 1 (a hand at the target) to 0 at this distance
DRAWER_OPEN = 0.15
# How near the tracked object (``track_points``' first) must come to its goal point for the task to count as
# done as an object tracker sees it — what a dream that reads progress from the tracked points ends on: push's
# own tolerance, the drawer's handle within 2 cm of fully open, the bin's inner half-width, a block on its base.
TRACK_DONE = {"push": PUSH_TOLERANCE, "open_drawer": 0.02, "pick_place": CONTAINER_INNER, "stack": 0.02}


def _on_table(spec: ObjectSpec, place: Place, xy: tuple[float, float]) -> tuple[float, float, float]:
    return (float(xy[0]), float(xy[1]), place.table_height + spec.half_height + 0.002)


def _pick(rng: np.random.Generator, pool: list[ObjectSpec], exclude: tuple[str, ...] = ()) -> ObjectSpec:
    pool = [o for o in pool if o.id not in exclude]
    return pool[int(rng.integers(len(pool)))]


def make_layout(task: str, place: Place, rng: np.random.Generator, objects: list[ObjectSpec] | None = None) -> Layout:
    """Props for ``task`` on this place's table; ``objects`` restricts which objects may appear."""
    pool = list(objects or OBJECTS)
    tx, ty = place.table_half
    near_y = -ty + 0.12  # the table's near band, in easy reach
    side = 1 if rng.random() < 0.5 else -1
    start = (float(rng.uniform(-0.3, 0.3)), -ty - float(rng.uniform(1.0, 1.5)), np.pi / 2)
    objs: list[tuple[ObjectSpec, tuple[float, float, float], float]] = []
    lay = Layout(objects=objs, start=start)
    if task == "push":
        o = _pick(rng, pool)
        x0, y0 = float(rng.uniform(-0.15, 0.15)), near_y + float(rng.uniform(0.02, 0.10))
        ang = float(rng.uniform(-0.5, 0.5)) + (0.0 if rng.random() < 0.5 else np.pi) * 1.0
        dist = float(rng.uniform(0.15, 0.25))
        tx_, ty_ = x0 + dist * np.cos(ang), y0 + dist * np.sin(ang) * 0.5
        objs.append((o, _on_table(o, place, (x0, y0)), float(rng.uniform(-np.pi, np.pi))))
        lay.target = (float(np.clip(tx_, -tx + 0.08, tx - 0.08)), float(np.clip(ty_, -ty + 0.08, ty - 0.1)))
    elif task == "open_drawer":
        cx = float(rng.uniform(-0.12, 0.12))
        lay.cabinet = (cx, -ty + CABINET_HALF[1] + 0.16)
        o = _pick(rng, pool)
        objs.append((o, _on_table(o, place, (cx - side * 0.30, near_y + 0.05)), float(rng.uniform(-np.pi, np.pi))))
    elif task == "pick_place":
        o = _pick(rng, pool)
        objs.append((o, _on_table(o, place, (side * float(rng.uniform(0.12, 0.2)), near_y + float(rng.uniform(0.0, 0.08)))), float(rng.uniform(-np.pi, np.pi))))
        lay.container = (-side * float(rng.uniform(0.12, 0.2)), near_y + float(rng.uniform(0.05, 0.12)))
    elif task == "stack":
        stackable = [o for o in pool if o.stackable] or [o for o in OBJECTS if o.stackable]
        base = _pick(rng, stackable)
        top = _pick(rng, stackable, exclude=(base.id,)) if len(stackable) > 1 else base
        objs.append((top, _on_table(top, place, (side * float(rng.uniform(0.12, 0.2)), near_y + float(rng.uniform(0.0, 0.06)))), float(rng.uniform(-0.4, 0.4))))
        objs.append((base, _on_table(base, place, (-side * float(rng.uniform(0.08, 0.16)), near_y + float(rng.uniform(0.03, 0.1)))), float(rng.uniform(-0.4, 0.4))))
    else:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if rng.random() < 0.5 and task != "open_drawer":  # a distractor at the far side of the table
        d = _pick(rng, pool, exclude=tuple(o.id for o, _, _ in objs))
        objs.append((d, _on_table(d, place, (float(rng.uniform(-tx + 0.1, tx - 0.1)), ty - 0.12)), float(rng.uniform(-np.pi, np.pi))))
    return lay


def _norm(v: np.ndarray) -> float:
    """``np.linalg.norm`` of a vector, the same way (sqrt of the dot product), without its overhead."""
    return math.sqrt(v.dot(v))


def _clip99(x: float) -> float:
    """``float(np.clip(x, 0, 0.99))`` without the array round trip."""
    return min(max(float(x), 0.0), 0.99)


class TaskState:
    """Reads the task-relevant true state of a running simulator: success and dense progress."""

    def __init__(self, task: str, sim: Simulator, layout: Layout, place: Place) -> None:
        self.task, self.sim, self.layout, self.place = task, sim, layout, place
        m = sim.model
        self._obj = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"obj{i}") for i in range(len(layout.objects))], dtype=int)
        self._drawer_q = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "drawer_slide")] if layout.cabinet else None
        self._handle = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "drawer_grasp") if layout.cabinet else -1
        self._slide = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "drawer_slide") if layout.cabinet else -1
        # Where the objects start, for dense progress. A simulator straight from its model has not
        # been forwarded yet (its xpos are all zero): compute the positions from qpos first.
        mujoco.mj_kinematics(m, sim.data)
        self._initial = self.object_positions()
        # The parts of progress() that do not change within an episode.
        if task == "push":
            self._d0 = _norm(self._initial[0, :2] - layout.target)
        elif task == "pick_place":
            self._goal = np.array([*layout.container, place.table_height + 0.04])
            self._d0 = _norm(self._initial[0] - self._goal)
        elif task == "stack":
            self._lift = np.array([0, 0, layout.objects[1][0].half_height + layout.objects[0][0].half_height])

    def object_positions(self) -> np.ndarray:
        return self.sim.data.xpos[self._obj]  # fancy indexing: a copy

    def object_quats(self) -> np.ndarray:
        return self.sim.data.xquat[self._obj]

    def drawer_opening(self) -> float:
        return float(self.sim.data.qpos[self._drawer_q]) if self._drawer_q is not None else 0.0

    def _hand_dist(self, p: np.ndarray) -> float:
        w = self.sim.wrist_positions() - p  # wrist offsets (2, 3)
        return math.sqrt((w * w).sum(axis=1).min())  # = min(np.linalg.norm(w, axis=1)), bit for bit

    def reach_point(self) -> np.ndarray:
        """Where progress's reach term measures the nearest hand from: the drawer's handle, else the task's object."""
        if self.task == "open_drawer":
            return self.sim.data.site_xpos[self._handle].copy()
        return self.object_positions()[0]

    def goal_point(self) -> np.ndarray:
        """Where the task wants its reach point to end up: the push target on the table, the container's
        goal, the top of the stack's base, the drawer's handle pulled open."""
        if self.task == "open_drawer":
            axis = self.sim.data.xaxis[self._slide]  # the slide's world direction (opening = +qpos)
            return self.reach_point() + axis * (DRAWER_OPEN - self.drawer_opening())
        if self.task == "push":
            return np.array([*self.layout.target, self._initial[0, 2]])
        if self.task == "pick_place":
            return self._goal.copy()
        return self.object_positions()[1] + self._lift

    def track_points(self) -> np.ndarray:
        """(2, 3) world positions an object tracker reports for this task: the thing to move (``reach_point``)
        and where it should go (``goal_point``). Why: a planner's cost needs to know where both are, and a
        model that is told them at every frame learns how the hands move the first."""
        return np.stack([self.reach_point(), self.goal_point()])

    def _reach(self, p: np.ndarray) -> float:
        return min(max(1 - self._hand_dist(p) / REACH_RANGE, 0.0), 1.0)

    def _held(self, name: str) -> bool:
        return any(self.sim.grasped_name(s) == name for s in range(2))

    def success(self) -> bool:
        return self._success(self.object_positions())

    def _success(self, pos: np.ndarray) -> bool:
        th = self.place.table_height
        if self.task == "push":
            return _norm(pos[0, :2] - self.layout.target) < PUSH_TOLERANCE
        if self.task == "open_drawer":
            return self.drawer_opening() > DRAWER_OPEN
        if self.task == "pick_place":
            rel = np.abs(pos[0, :2] - np.asarray(self.layout.container))
            return bool(np.all(rel < CONTAINER_INNER) and pos[0, 2] < th + CONTAINER_WALL + 0.02 and not self._held("obj0"))
        top, base = self.layout.objects[0][0], self.layout.objects[1][0]
        rel = np.abs(pos[0, :2] - pos[1, :2])
        on = abs(pos[0, 2] - (pos[1, 2] + base.half_height + top.half_height)) < 0.02
        return bool(np.all(rel < min(base.size[0], 0.04)) and on and not self._held("obj0") and not self._held("obj1"))

    def progress(self) -> float:
        """Dense progress in [0, 1]: reaching, then holding, then moving the thing to its goal."""
        pos = self.object_positions()
        if self._success(pos):
            return 1.0
        reach = self._reach
        if self.task == "push":
            d = _norm(pos[0, :2] - self.layout.target)
            return _clip99(0.2 * reach(pos[0]) + 0.8 * (1 - (d - PUSH_TOLERANCE) / max(self._d0 - PUSH_TOLERANCE, 1e-3)))
        if self.task == "open_drawer":
            handle = self.sim.data.site_xpos[self._handle]
            return _clip99(0.3 * reach(handle) + 0.7 * self.drawer_opening() / DRAWER_OPEN)
        if self.task == "pick_place":
            goal, d0 = self._goal, self._d0
        else:
            goal = pos[1] + self._lift
            d0 = _norm(self._initial[0] - goal)
        d = _norm(pos[0] - goal)
        held = 0.15 if self._held("obj0") else 0.0
        return _clip99(0.2 * reach(pos[0]) + held + 0.65 * (1 - d / max(d0, 1e-3)))

    def truth_row(self) -> dict:
        """What evaluation may want to know about this instant (object and articulation state)."""
        return {
            "object_pos": self.object_positions().ravel().tolist(),
            "object_quat": self.object_quats().ravel().tolist(),
            "drawer_opening": self.drawer_opening(),
            "track": self.track_points().ravel().tolist(),
            "grasped_left": self.sim.grasped_name(0) or "",
            "grasped_right": self.sim.grasped_name(1) or "",
            "progress": self.progress(),
            "success": self.success(),
        }


__all__ = ["TASKS", "TaskState", "make_layout", "DRAWER_TRAVEL"]
