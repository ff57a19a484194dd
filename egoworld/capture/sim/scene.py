"""MJCF for one session's world, built from small pieces: room, table, task props, head, hands.

The model is data: every piece is a function of its parameters returning an MJCF fragment.
Bodies that an agent moves kinematically (head, palms, finger segments) are mocap bodies; the
objects are free bodies; a grasp is a weld equality between a palm and an object, switched on
and off by the simulator.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from egoworld.body import FINGERS, SIDES
from egoworld.capture.sim.catalog import OBJECTS, ObjectSpec, Place

DRAWER_TRAVEL = 0.22


@dataclass
class Layout:
    """What the task puts in the room (positions in the world frame, metres)."""

    objects: list[tuple[ObjectSpec, tuple[float, float, float], float]]  # spec, position, yaw
    target: tuple[float, float] | None = None  # push target marker (x, y) on the table
    container: tuple[float, float] | None = None  # open bin on the table
    cabinet: tuple[float, float] | None = None  # cabinet with a drawer that pulls toward -y
    start: tuple[float, float, float] = (0.0, -1.5, np.pi / 2)  # person x, y, heading

    def to_json(self) -> dict:
        return {"objects": [{"id": o.id, "pos": list(p), "yaw": y} for o, p, y in self.objects],
                "target": self.target, "container": self.container, "cabinet": self.cabinet, "start": list(self.start)}

    @classmethod
    def from_json(cls, d: dict) -> "Layout":
        by_id = {o.id: o for o in OBJECTS}
        tup = lambda v: None if v is None else tuple(v)  # noqa: E731
        return cls([(by_id[o["id"]], tuple(o["pos"]), o["yaw"]) for o in d["objects"]],
                   tup(d["target"]), tup(d["container"]), tup(d["cabinet"]), tuple(d["start"]))


CONTAINER_INNER = 0.075  # half width of the bin's inside
CONTAINER_WALL = 0.065  # wall height
CABINET_HALF = (0.14, 0.16, 0.11)  # cabinet outer half extents
ROLLING = ("sphere", "ellipsoid", "capsule")  # shapes that get rolling friction
SEGMENT_RADIUS = np.array([0.0105, 0.0095, 0.0098, 0.0093, 0.0082])


def _f(*xs: float) -> str:
    return " ".join(f"{x:.6g}" for x in xs)


def assets(place: Place) -> str:
    (a, b), (c, d) = place.floor_rgb, place.table_rgb
    builtin = place.floor_builtin
    return f"""
  <asset>
    <texture name="floor" type="2d" builtin="{builtin}" rgb1="{_f(*a)}" rgb2="{_f(*b)}" width="256" height="256"
             mark="random" random="0.04" markrgb="{_f(*b)}"/>
    <material name="floor" texture="floor" texrepeat="1 1" texuniform="true"/>
    <texture name="wall" type="2d" builtin="checker" rgb1="{_f(*place.wall_rgb)}" rgb2="{_f(*(np.array(place.wall_rgb) * 0.82))}"
             width="64" height="64" mark="random" random="0.05" markrgb="{_f(*place.wall_mark_rgb)}"/>
    <material name="wall" texture="wall" texrepeat="1.5 1.5" texuniform="true"/>
    <texture name="table" type="2d" builtin="checker" rgb1="{_f(*c)}" rgb2="{_f(*d)}" width="128" height="128"
             mark="edge" markrgb="{_f(*(np.array(c) * 0.6))}"/>
    <material name="table" texture="table" texrepeat="3 2"/>
    <material name="skin" rgba="0.88 0.68 0.56 1"/>
    <material name="sleeve" rgba="0.25 0.28 0.35 1"/>
  </asset>"""


def room(place: Place) -> str:
    hx, hy = place.room
    h = 1.4
    # Walls and ceiling are planes facing into the room: planes take 2-D textures cleanly.
    parts = [f'<geom name="floor" type="plane" size="{_f(hx, hy, 0.1)}" material="floor"/>',
             f'<geom name="ceiling" type="plane" pos="0 0 {2 * h}" zaxis="0 0 -1" size="{_f(hx, hy, 0.1)}" rgba="0.9 0.9 0.88 1"/>']
    # (MuJoCo turns z onto the normal by the shortest rotation: the side walls' local x is vertical.)
    for i, (x, y, sx, sy, normal) in enumerate([(0, hy, hx, h, "0 -1 0"), (0, -hy, hx, h, "0 1 0"), (hx, 0, h, hy, "-1 0 0"), (-hx, 0, h, hy, "1 0 0")]):
        parts.append(f'<geom name="wall{i}" type="plane" pos="{_f(x, y, h)}" zaxis="{normal}" size="{_f(sx, sy, 0.1)}" material="wall"/>')
    for i, (x, y, sx, sy, sz, *rgb) in enumerate(place.clutter):
        parts.append(f'<geom name="clutter{i}" type="box" pos="{_f(x, y, sz)}" size="{_f(sx, sy, sz)}" rgba="{_f(*rgb)} 1"/>')
    for i, (wall, u, z, hw, hh, *rgb) in enumerate(place.posters):
        if wall < 2:
            pos, size = (u * hx, (hy - 0.005) * (1 if wall == 0 else -1), z), (hw, 0.004, hh)
        else:
            pos, size = ((hx - 0.005) * (1 if wall == 2 else -1), u * hy, z), (0.004, hw, hh)
        parts.append(f'<geom name="poster{i}" type="box" pos="{_f(*pos)}" size="{_f(*size)}" rgba="{_f(*rgb)} 1" contype="0" conaffinity="0"/>')
    for i, (x, y, z, r, g, b) in enumerate(place.lights):
        parts.append(f'<light name="light{i}" pos="{_f(x, y, z)}" dir="0 0 -1" diffuse="{_f(r, g, b)}" specular="0.1 0.1 0.1" castshadow="false" attenuation="1 0 0"/>')
    return "\n    ".join(parts)


def table(place: Place) -> str:
    tx, ty = place.table_half
    th = place.table_height
    legs = "".join(
        f'<geom type="box" pos="{_f(sx * (tx - 0.04), sy * (ty - 0.04), (th - 0.03) / 2)}" size="{_f(0.025, 0.025, (th - 0.03) / 2)}" rgba="0.3 0.25 0.2 1"/>'
        for sx in (-1, 1) for sy in (-1, 1)
    )
    return f'<body name="table" pos="0 0 0"><geom name="tabletop" type="box" pos="{_f(0, 0, th - 0.015)}" size="{_f(tx, ty, 0.015)}" material="table"/>{legs}</body>'


def object_body(spec: ObjectSpec, name: str, pos: tuple[float, float, float], yaw: float) -> str:
    q = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
    return (f'<body name="{name}" pos="{_f(*pos)}" quat="{_f(*q)}"><freejoint name="{name}_free"/>'
            f'<geom name="{name}_geom" type="{spec.shape}" size="{_f(*[s for s in spec.size if s > 0])}" rgba="{_f(*spec.rgb)} 1" '
            f'mass="{spec.mass}" friction="1.0 0.01 0.002" condim="{6 if spec.shape in ROLLING else 4}"/></body>')


def container(x: float, y: float, z: float) -> str:
    w, h, t = CONTAINER_INNER, CONTAINER_WALL, 0.006
    walls = [(0, w + t, w + 2 * t, t), (0, -w - t, w + 2 * t, t), (w + t, 0, t, w), (-w - t, 0, t, w)]
    geoms = [f'<geom name="bin_bottom" type="box" pos="0 0 {t}" size="{_f(w + 2 * t, w + 2 * t, t)}" rgba="0.35 0.35 0.4 1"/>']
    geoms += [f'<geom type="box" pos="{_f(px, py, h / 2 + t)}" size="{_f(sx, sy, h / 2)}" rgba="0.45 0.45 0.55 1"/>' for px, py, sx, sy in walls]
    return f'<body name="bin" pos="{_f(x, y, z)}">{"".join(geoms)}</body>'


def cabinet(x: float, y: float, z: float) -> str:
    """A cabinet with one drawer on a slide joint; the drawer's handle faces -y (the person)."""
    cx, cy, cz = CABINET_HALF
    t = 0.008
    shell = [(0, 0, t, cx, cy, t), (0, 0, 2 * cz - t, cx, cy, t), (cx - t, 0, cz, t, cy, cz), (-cx + t, 0, cz, t, cy, cz), (0, cy - t, cz, cx, t, cz)]
    g = "".join(f'<geom type="box" pos="{_f(px, py, pz)}" size="{_f(sx, sy, sz)}" rgba="0.55 0.42 0.3 1"/>' for px, py, pz, sx, sy, sz in shell)
    dx, dy, dz = cx - 2 * t - 0.004, cy - t - 0.01, cz - 2 * t - 0.006
    dwalls = [(0, 0, -dz + t, dx, dy, t), (0, -dy + t, 0, dx + 0.008, t, dz + 0.012), (0, dy - t, 0, dx, t, dz), (dx - t, 0, 0, t, dy, dz), (-dx + t, 0, 0, t, dy, dz)]
    dg = "".join(f'<geom type="box" pos="{_f(px, py, pz)}" size="{_f(sx, sy, sz)}" rgba="0.8 0.7 0.5 1"/>' for px, py, pz, sx, sy, sz in dwalls)
    handle = (f'<geom name="drawer_handle" type="capsule" fromto="{_f(-0.045, -dy - 0.035, 0.02, 0.045, -dy - 0.035, 0.02)}" size="0.009" rgba="0.15 0.15 0.15 1"/>'
              f'<geom type="box" pos="{_f(-0.045, -dy - 0.018, 0.02)}" size="0.006 0.017 0.006" rgba="0.15 0.15 0.15 1"/>'
              f'<geom type="box" pos="{_f(0.045, -dy - 0.018, 0.02)}" size="0.006 0.017 0.006" rgba="0.15 0.15 0.15 1"/>'
              f'<site name="drawer_grasp" pos="{_f(0, -dy - 0.035, 0.02)}" size="0.005"/>')
    drawer = (f'<body name="drawer" pos="{_f(0, 0.004, cz + 0.004)}"><joint name="drawer_slide" type="slide" axis="0 -1 0" range="0 {DRAWER_TRAVEL}" '
              f'damping="6" armature="0.05" frictionloss="0.3" limited="true"/><inertial pos="0 0 0" mass="0.8" diaginertia="0.01 0.01 0.01"/>{dg}{handle}</body>')
    return f'<body name="cabinet" pos="{_f(x, y, z)}">{g}{drawer}</body>'


def target_marker(x: float, y: float, z: float) -> str:
    return f'<geom name="target" type="cylinder" pos="{_f(x, y, z + 0.0012)}" size="0.05 0.001" rgba="0.1 0.9 0.3 0.8" contype="0" conaffinity="0"/>'


def head(fovy: float) -> str:
    # The head body is the camera in OpenCV axes (x right, y down, z forward); MuJoCo cameras look
    # along -z with y up, so the camera element is turned 180° about x.
    return f'<body name="head" mocap="true" pos="0 0 1.6"><camera name="head_cam" quat="0 1 0 0" fovy="{fovy:.6g}"/></body>'


def hand(side: str, scale: float, segment_lengths: np.ndarray) -> str:
    """A palm (colliding, pushes objects) with a forearm, and 15 finger segments (visual only)."""
    m = 1 if side == "right" else -1
    s = scale
    palm = (f'<body name="{side}_palm" mocap="true" pos="{m * 0.25} 0 1.0">'
            f'<geom name="{side}_palm_geom" type="box" pos="{_f(0.045 * s, 0, 0)}" size="{_f(0.045 * s, 0.042 * s, 0.013 * s)}" material="skin" friction="1 0.01 0.001"/>'
            f'<geom type="capsule" fromto="{_f(-0.02, 0, 0, -0.30, 0, -0.02)}" size="{0.032 * s:.4g}" material="sleeve" contype="0" conaffinity="0"/>'
            f'<site name="{side}_grasp" pos="{_f(0.075 * s, 0, -0.035 * s)}" size="0.004"/></body>')
    fingers = []
    for f, name in enumerate(FINGERS):
        for j in range(3):
            half = segment_lengths[f, j] * s / 2
            fingers.append(f'<body name="{side}_{name}{j}" mocap="true" pos="0 0 0"><geom type="capsule" fromto="{_f(0, 0, -half, 0, 0, half)}" '
                           f'size="{SEGMENT_RADIUS[f] * s:.4g}" material="skin" contype="0" conaffinity="0"/></body>')
    return palm + "".join(fingers)


def build_mjcf(place: Place, layout: Layout, hand_scale: float, fovy: float, timestep: float,
               segment_lengths: np.ndarray, shadow_size: int = 0, light_scale: float = 1.0) -> str:
    """The whole scene as an MJCF string; ``light_scale`` < 1 dims every light (a dark capture)."""
    if light_scale != 1.0:
        place = replace(place, ambient=place.ambient * light_scale,
                        lights=tuple((*lt[:3], *(np.array(lt[3:]) * light_scale)) for lt in place.lights))
    th = place.table_height
    world = [room(place), table(place)]
    graspable = []
    if layout.container is not None:
        world.append(container(*layout.container, th))
    if layout.cabinet is not None:
        world.append(cabinet(*layout.cabinet, th))
        graspable.append("drawer")
    if layout.target is not None:
        world.append(target_marker(*layout.target, th))
    for i, (spec, pos, yaw) in enumerate(layout.objects):
        world.append(object_body(spec, f"obj{i}", pos, yaw))
        graspable.append(f"obj{i}")
    world.append(head(fovy))
    for side in SIDES:
        world.append(hand(side, hand_scale, segment_lengths))
    welds = "".join(f'<weld name="grasp_{side}_{g}" body1="{side}_palm" body2="{g}" active="false" solref="0.01 1"/>'
                    for side in SIDES for g in graspable)
    return f"""<mujoco model="egoworld">
  <compiler angle="radian"/>
  <option timestep="{timestep:.10g}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <visual><quality shadowsize="{shadow_size}" offsamples="0" numslices="14" numstacks="8" numquads="1"/><map znear="0.003" zfar="40"/>
    <headlight ambient="{_f(*[place.ambient] * 3)}" diffuse="{_f(*[0.25 * light_scale] * 3)}" specular="0 0 0"/></visual>
  {assets(place)}
  <worldbody>
    {chr(10).join(world)}
  </worldbody>
  <equality>{welds}</equality>
</mujoco>"""
