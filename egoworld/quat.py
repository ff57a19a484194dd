"""Quaternion math (w, x, y, z) on plain Python floats, in SciPy's conventions.

Why not ``scipy.spatial.transform.Rotation``: one frame of the simulator composes a handful of
single rotations, and a Rotation object's per-call overhead was most of the frame's cost. These
follow SciPy's conventions — compositions re-normalised, inverses are conjugates, rotation vectors
with the same small-angle series — and agree with it to rounding.

The ``batch_*`` functions do the same on numpy arrays (..., 4): SciPy 1.17 composes a batch of
6 000 rotations in ~10 ms and turns them into rotation vectors in ~14 ms (its array-API layer),
which was a tenth of a whole session's sync; a few whole-array expressions take ~0.3 ms.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Quat = tuple[float, float, float, float]


def mul(p: Sequence[float], q: Sequence[float]) -> Quat:
    """The composition p·q (first q, then p), normalised."""
    pw, px, py, pz = p
    qw, qx, qy, qz = q
    w = pw * qw - px * qx - py * qy - pz * qz
    x = pw * qx + px * qw + py * qz - pz * qy
    y = pw * qy - px * qz + py * qw + pz * qx
    z = pw * qz + px * qy - py * qx + pz * qw
    n = math.sqrt(w * w + x * x + y * y + z * z)
    return w / n, x / n, y / n, z / n


def unit(q: Sequence[float]) -> Quat:
    w, x, y, z = q
    n = math.sqrt(w * w + x * x + y * y + z * z)
    return w / n, x / n, y / n, z / n


def conj(q: Sequence[float]) -> Quat:
    return q[0], -q[1], -q[2], -q[3]


def canonical(q: Sequence[float]) -> Quat:
    """The same rotation with qw ≥ 0."""
    return (q[0], q[1], q[2], q[3]) if q[0] >= 0 else (-q[0], -q[1], -q[2], -q[3])


def rotate(q: Sequence[float], v: Sequence[float]) -> tuple[float, float, float]:
    """The unit quaternion q applied to the vector v (through its rotation matrix)."""
    w, x, y, z = q
    vx, vy, vz = v
    xx, yy, zz, ww = x * x, y * y, z * z, w * w
    xy, xz, yz, xw, yw, zw = x * y, x * z, y * z, x * w, y * w, z * w
    return ((xx - yy - zz + ww) * vx + 2 * (xy - zw) * vy + 2 * (xz + yw) * vz,
            2 * (xy + zw) * vx + (-xx + yy - zz + ww) * vy + 2 * (yz - xw) * vz,
            2 * (xz - yw) * vx + 2 * (yz + xw) * vy + (-xx - yy + zz + ww) * vz)


def from_rotvec(v: Sequence[float]) -> Quat:
    vx, vy, vz = v
    a = math.sqrt(vx * vx + vy * vy + vz * vz)
    if a <= 1e-3:
        a2 = a * a
        k = 0.5 - a2 / 48 + a2 * a2 / 3840
    else:
        k = math.sin(a / 2) / a
    return math.cos(a / 2), k * vx, k * vy, k * vz


def as_rotvec(q: Sequence[float]) -> tuple[float, float, float]:
    w, x, y, z = q
    if w < 0:
        w, x, y, z = -w, -x, -y, -z
    a = 2 * math.atan2(math.sqrt(x * x + y * y + z * z), w)
    if a <= 1e-3:
        a2 = a * a
        k = 2 + a2 / 12 + 7 * a2 * a2 / 2880
    else:
        k = a / math.sin(a / 2)
    return k * x, k * y, k * z


def batch_unit(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) scaled to unit length (as SciPy's ``from_quat`` does)."""
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def batch_conj(q: np.ndarray) -> np.ndarray:
    """The inverse of unit quaternions (..., 4)."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def batch_mul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Compositions p·q (first q, then p) of quaternion arrays (..., 4), broadcast, normalised."""
    pw, px, py, pz = np.moveaxis(np.asarray(p, dtype=np.float64), -1, 0)
    qw, qx, qy, qz = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    out = np.stack([pw * qw - px * qx - py * qy - pz * qz,
                    pw * qx + px * qw + py * qz - pz * qy,
                    pw * qy - px * qz + py * qw + pz * qx,
                    pw * qz + px * qy - py * qx + pz * qw], -1)
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def batch_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) applied to vectors (..., 3) (through their rotation matrices)."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    vx, vy, vz = np.moveaxis(np.asarray(v, dtype=np.float64), -1, 0)
    xx, yy, zz, ww = x * x, y * y, z * z, w * w
    xy, xz, yz, xw, yw, zw = x * y, x * z, y * z, x * w, y * w, z * w
    return np.stack([(xx - yy - zz + ww) * vx + 2 * (xy - zw) * vy + 2 * (xz + yw) * vz,
                     2 * (xy + zw) * vx + (-xx + yy - zz + ww) * vy + 2 * (yz - xw) * vz,
                     2 * (xz - yw) * vx + 2 * (yz + xw) * vy + (-xx - yy + zz + ww) * vz], -1)


def batch_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) of unit quaternions (..., 4): the shortest rotation, SciPy's small-angle series."""
    q = np.asarray(q, dtype=np.float64)
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    a = 2 * np.arctan2(np.linalg.norm(v, axis=-1), q[..., 0])
    a2 = a * a
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(a <= 1e-3, 2 + a2 / 12 + 7 * a2 * a2 / 2880, a / np.sin(a / 2))
    return k[..., None] * v
