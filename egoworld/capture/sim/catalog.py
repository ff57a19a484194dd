"""The variety the data spec asks for: places, people and objects, each generated from an index.

Index k always gives the same place / person / object, so a session's metadata (``place_03``)
is enough to rebuild its world. The first entries are hand-picked to span the range; later
indices are drawn from a generator seeded by the index.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TASKS = ("push", "open_drawer", "pick_place", "stack")


@dataclass(frozen=True)
class Place:
    id: str
    room: tuple[float, float]  # half extents x, y (m)
    floor_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    floor_builtin: str  # checker | gradient
    wall_rgb: tuple[float, float, float]
    wall_mark_rgb: tuple[float, float, float]
    table_half: tuple[float, float]
    table_height: float
    table_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    lights: tuple[tuple[float, ...], ...]  # (x, y, z, r, g, b)
    ambient: float
    clutter: tuple[tuple[float, ...], ...]  # boxes along the walls: (x, y, hx, hy, hz, r, g, b)
    posters: tuple[tuple[float, ...], ...]  # (wall 0-3, u, z, hw, hh, r, g, b)

    def to_json(self) -> dict:
        return {"id": self.id, **{k: v for k, v in asdict(self).items() if k != "id"}}


@dataclass(frozen=True)
class Person:
    id: str
    eye_height: float
    reach: float  # comfortable wrist reach from the shoulder (m)
    speed: float  # movement speed multiplier
    handedness: str  # right | left
    hand_scale: float
    bob: float  # head bob amplitude while walking (m)
    restlessness: float  # how much the head wanders (look-arounds, sway)
    tremor: float  # small noise on every motion (m per frame)
    mistake_rate: float  # chance of a miss / drop and retry per manipulation

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ObjectSpec:
    id: str
    shape: str  # box | sphere | cylinder | capsule | ellipsoid
    size: tuple[float, float, float]  # MuJoCo geom size (half extents / radius, half length)
    rgb: tuple[float, float, float]
    mass: float
    stackable: bool  # flat top and bottom

    @property
    def half_height(self) -> float:
        if self.shape in ("box", "ellipsoid"):
            return self.size[2]
        if self.shape == "sphere":
            return self.size[0]
        if self.shape == "capsule":
            return self.size[0] + self.size[1]
        return self.size[1]  # cylinder

    @property
    def radius(self) -> float:
        """Horizontal radius (bounding circle), for grasp and placement checks."""
        if self.shape in ("box", "ellipsoid"):
            return float(np.hypot(self.size[0], self.size[1]))
        return self.size[0]

    def to_json(self) -> dict:
        return asdict(self)


def _obj(id_: str, shape: str, size: tuple[float, float, float], rgb, mass: float, stackable: bool) -> ObjectSpec:
    # Sizes are ×1.3 of a first guess so that objects stay several pixels wide at 64×64.
    return ObjectSpec(id_, shape, tuple(round(v * OBJECT_SCALE, 4) for v in size), rgb, mass, stackable)


OBJECT_SCALE = 1.3
OBJECTS: tuple[ObjectSpec, ...] = (
    _obj("red_cube", "box", (0.03, 0.03, 0.03), (0.85, 0.12, 0.1), 0.20, True),
    _obj("blue_ball", "sphere", (0.035, 0, 0), (0.1, 0.3, 0.9), 0.15, False),
    _obj("green_can", "cylinder", (0.03, 0.045, 0), (0.15, 0.7, 0.2), 0.25, True),
    _obj("yellow_brick", "box", (0.05, 0.03, 0.022), (0.95, 0.85, 0.1), 0.30, True),
    _obj("purple_pill", "capsule", (0.022, 0.035, 0), (0.6, 0.2, 0.7), 0.10, False),
    _obj("orange_egg", "ellipsoid", (0.04, 0.03, 0.03), (1.0, 0.5, 0.05), 0.12, False),
    _obj("cyan_block", "box", (0.025, 0.04, 0.025), (0.1, 0.8, 0.85), 0.10, True),
    _obj("white_mug", "cylinder", (0.035, 0.05, 0), (0.92, 0.92, 0.9), 0.35, True),
)

_PEOPLE = (
    Person("person_00", 1.68, 0.62, 1.0, "right", 1.00, 0.020, 0.5, 0.0008, 0.25),
    Person("person_01", 1.52, 0.55, 0.8, "left", 0.88, 0.015, 0.3, 0.0005, 0.15),
    Person("person_02", 1.80, 0.72, 1.3, "right", 1.12, 0.030, 0.8, 0.0012, 0.35),
    Person("person_03", 1.60, 0.60, 1.1, "right", 0.95, 0.012, 1.0, 0.0006, 0.20),
    Person("person_04", 1.74, 0.68, 0.7, "left", 1.05, 0.025, 0.2, 0.0015, 0.40),
    Person("person_05", 1.57, 0.58, 1.2, "right", 0.92, 0.018, 0.6, 0.0010, 0.10),
)


def person(k: int) -> Person:
    if k < len(_PEOPLE):
        return _PEOPLE[k]
    r = np.random.default_rng([7, k])
    return Person(
        f"person_{k:02d}", float(r.uniform(1.5, 1.82)), float(r.uniform(0.55, 0.72)), float(r.uniform(0.7, 1.3)),
        "left" if r.random() < 0.2 else "right", float(r.uniform(0.85, 1.15)), float(r.uniform(0.01, 0.03)),
        float(r.uniform(0.2, 1.0)), float(r.uniform(0.0005, 0.0015)), float(r.uniform(0.1, 0.4)),
    )


def _rgb(r: np.random.Generator, lo: float = 0.1, hi: float = 0.95) -> tuple[float, float, float]:
    return tuple(float(x) for x in np.round(r.uniform(lo, hi, 3), 3))  # type: ignore[return-value]


def place(k: int) -> Place:
    """Room k: size, floor and wall textures, table, lights and clutter, all from the index."""
    r = np.random.default_rng([11, k])
    hx, hy = float(r.uniform(1.8, 3.0)), float(r.uniform(1.8, 3.0))
    n_lights = int(r.integers(1, 4))
    lights = []
    for _ in range(n_lights):
        warm = r.uniform(0.0, 0.3)
        inten = r.uniform(0.35, 0.8)
        lights.append((float(r.uniform(-hx, hx) * 0.6), float(r.uniform(-hy, hy) * 0.6), float(r.uniform(2.2, 2.6)),
                       round(inten, 3), round(inten * (1 - warm / 3), 3), round(inten * (1 - warm), 3)))
    clutter = []
    for _ in range(int(r.integers(2, 6))):
        wall = int(r.integers(0, 4))
        w, dpt, h = r.uniform(0.2, 0.6), r.uniform(0.15, 0.35), r.uniform(0.2, 0.9)
        if wall < 2:
            x, y = r.uniform(-hx + 0.6, hx - 0.6), (hy - dpt) * (1 if wall == 0 else -1)
            clutter.append((float(x), float(y), float(w), float(dpt), float(h), *_rgb(r)))
        else:
            x, y = (hx - dpt) * (1 if wall == 2 else -1), r.uniform(-hy + 0.6, hy - 0.6)
            clutter.append((float(x), float(y), float(dpt), float(w), float(h), *_rgb(r)))
    posters = [(int(r.integers(0, 4)), float(r.uniform(-0.7, 0.7)), float(r.uniform(1.2, 1.9)),
                float(r.uniform(0.15, 0.45)), float(r.uniform(0.15, 0.35)), *_rgb(r)) for _ in range(int(r.integers(2, 6)))]
    return Place(
        id=f"place_{k:02d}", room=(round(hx, 3), round(hy, 3)),
        floor_rgb=(_rgb(r, 0.05, 0.6), _rgb(r, 0.3, 0.95)), floor_builtin="checker" if k % 3 else "gradient",
        wall_rgb=_rgb(r, 0.3, 0.95), wall_mark_rgb=_rgb(r, 0.0, 0.5),
        table_half=(round(float(r.uniform(0.45, 0.65)), 3), round(float(r.uniform(0.35, 0.45)), 3)),
        table_height=round(float(r.uniform(0.70, 0.82)), 3), table_rgb=(_rgb(r, 0.2, 0.8), _rgb(r, 0.2, 0.8)),
        lights=tuple(lights), ambient=round(float(r.uniform(0.15, 0.4)), 3), clutter=tuple(clutter), posters=tuple(posters),
    )
