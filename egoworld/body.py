"""The hand model shared by the simulator and the action definition.

21 keypoints per hand (wrist + 4 per finger), expressed in the wrist frame: x toward the
fingers, y toward the thumb side (right hand; mirrored in y for the left), z out of the back of
the hand. One *grip* value in [0, 1] curls every finger; the hand's *scale* sizes it. This is
the bridge between the low-dimensional control (grip per hand) and the full action (finger
keypoints relative to the wrist): ``finger_keypoints(grip, scale)`` and its inverse
``fit_grip(keypoints)``.
"""
from __future__ import annotations

import numpy as np

SIDES = ("left", "right")
FINGERS = ("thumb", "index", "middle", "ring", "little")
KEYPOINT_NAMES = ["wrist"] + [
    f"{f}_{j}"
    for f in FINGERS
    for j in (("cmc", "mcp", "ip", "tip") if f == "thumb" else ("mcp", "pip", "dip", "tip"))
]
N_KEYPOINTS = 21

# Nominal right hand (scale 1.0 ≈ an adult hand, 19 cm wrist to middle tip when flat).
_BASES = np.array(
    [[0.025, 0.022, -0.012], [0.090, 0.024, 0.0], [0.095, 0.004, 0.0], [0.090, -0.015, 0.0], [0.082, -0.032, 0.0]]
)
SEGMENT_LENGTHS = np.array(
    [[0.040, 0.032, 0.028], [0.045, 0.026, 0.020], [0.050, 0.030, 0.022], [0.046, 0.028, 0.021], [0.036, 0.021, 0.018]]
)
# Flexion at full grip for the three joints of each finger (radians).
_MAX_FLEX = np.radians(np.array([[25.0, 40.0, 45.0], [75.0, 95.0, 65.0], [75.0, 95.0, 65.0], [75.0, 95.0, 65.0], [75.0, 95.0, 65.0]]))
_THUMB_OPEN = np.array([0.55, 0.80, -0.22]) / np.linalg.norm([0.55, 0.80, -0.22])
_THUMB_AXIS = np.cross(_THUMB_OPEN, [0.0, 0.0, -1.0])
_THUMB_AXIS /= np.linalg.norm(_THUMB_AXIS)
_FINGER_AXIS = np.array([0.0, 1.0, 0.0])  # flexion about +y bends x toward -z (toward the palm)
_FINGER_OPEN = np.array([1.0, 0.0, 0.0])
_MIDDLE_MCP = KEYPOINT_NAMES.index("middle_mcp")


def _rodrigues_terms(v: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotating v about a unit axis by a is v·cos a + (axis×v)·sin a + axis(axis·v)·(1 − cos a)."""
    return v, np.cross(axis, v), axis * (axis @ v)


_TERMS = [_rodrigues_terms(_THUMB_OPEN, _THUMB_AXIS)] + [_rodrigues_terms(_FINGER_OPEN, _FINGER_AXIS)] * 4
# Constants of finger_keypoints, computed once and laid out component-major — (xyz, finger·joint),
# so the per-call arithmetic runs over long rows (the same operations, element for element).
_CUM_FLEX = np.cumsum(_MAX_FLEX, axis=1).ravel()  # (15,) cumulative flexion at full grip
_V, _C1, _C2 = (np.repeat(np.stack([t[i] for t in _TERMS]).T, 3, axis=1) for i in range(3))  # (3, 15)
_SEG_LEN = SEGMENT_LENGTHS.ravel()  # (15,)
_BASES_T = _BASES.T[:, :, None]  # (3, 5, 1)


def finger_keypoints(grip: np.ndarray | float, scale: np.ndarray | float = 1.0, side: str = "right") -> np.ndarray:
    """The 21 keypoints in the wrist frame for a grip in [0, 1]; shape (..., 21, 3)."""
    grip = np.clip(np.asarray(grip, dtype=np.float64), 0.0, 1.0)
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim:  # (a scalar broadcasts to any grip shape)
        scale = np.broadcast_to(scale, grip.shape)
    out = np.zeros(grip.shape + (N_KEYPOINTS, 3))
    phi = grip[..., None] * _CUM_FLEX  # (..., 15) cumulative flexion of each finger joint
    cos, sin = np.cos(phi)[..., None, :], np.sin(phi)[..., None, :]
    dirs = _V * cos + _C1 * sin + _C2 * (1 - cos)  # (..., 3, 15) direction of each segment
    seg = (_SEG_LEN * dirs).reshape(grip.shape + (3, 5, 3))  # (..., xyz, finger, joint), summed along joints:
    seg[..., 1] += seg[..., 0]
    seg[..., 2] += seg[..., 1]
    pts = out[..., 1:, :].reshape(grip.shape + (5, 4, 3))  # a view: the four keypoints of each finger
    pts[..., 0, :] = _BASES
    pts[..., 1:, :] = np.moveaxis(_BASES_T + seg, -3, -1)
    out *= scale[..., None, None]
    if side == "left":
        out[..., 1] *= -1.0
    return out


def hand_scale(keypoints: np.ndarray) -> np.ndarray:
    """Estimate the hand scale from wrist-frame keypoints (..., 21, 3): the palm does not curl."""
    return np.linalg.norm(keypoints[..., _MIDDLE_MCP, :], axis=-1) / np.linalg.norm(_BASES[2])


def fit_grip(keypoints: np.ndarray, side: str = "right", iters: int = 48) -> np.ndarray:
    """Invert ``finger_keypoints``: the grip whose keypoints best match (..., 21, 3) (golden section)."""
    scale = hand_scale(keypoints)
    lo = np.zeros(keypoints.shape[:-2])
    hi = np.ones_like(lo)
    gr = (np.sqrt(5.0) - 1.0) / 2.0

    def cost(g: np.ndarray) -> np.ndarray:
        return np.sum((finger_keypoints(g, scale, side) - keypoints) ** 2, axis=(-1, -2))

    c = hi - gr * (hi - lo)
    d = lo + gr * (hi - lo)
    fc, fd = cost(c), cost(d)
    for _ in range(iters):
        left = fc < fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        c_new = hi - gr * (hi - lo)
        d_new = lo + gr * (hi - lo)
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        fc, fd = np.where(left, cost(c), fd), np.where(left, fc, cost(d))
    return (lo + hi) / 2.0
