"""Motion streams resampled at the frame times (mapped onto each stream's clock).

Rotations are interpolated on the sphere (SLERP): componentwise interpolation of quaternions
leaves the unit sphere and bends the angular velocity. Positions and keypoints are interpolated
linearly; finger keypoints are interpolated *in the wrist frame*, where they move slowly, and put
back into the world with the interpolated wrist pose — interpolating them in the world would
shrink a turning hand.

A query outside the stream, or inside a gap longer than ``max_gap_s``, gets the nearest sample's
value (so arrays stay finite) and ``valid = False``.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

GAP_PERIODS = 6.0  # a gap longer than this many sample periods is not interpolated across


def default_max_gap(t_src: np.ndarray) -> float:
    """The largest gap interpolated across: a few nominal sample periods."""
    dt = np.diff(t_src)
    return float(GAP_PERIODS * np.median(dt)) if len(dt) else 0.0


def _bracket(t_src: np.ndarray, t_query: np.ndarray, max_gap_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Query times clamped into the source range, and whether each is genuinely bracketed."""
    tq = np.clip(t_query, t_src[0], t_src[-1])
    j = np.clip(np.searchsorted(t_src, tq, side="right"), 1, len(t_src) - 1)
    gap = t_src[j] - t_src[j - 1]
    valid = (t_query >= t_src[0]) & (t_query <= t_src[-1]) & (gap <= max_gap_s)
    return tq, valid


def _support(t_src: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Indices of the source samples that bracket the (clamped) query times: all interpolation reads.

    Consecutive ones in this subset are consecutive in the source too, so interpolating on the
    subset gives exactly the same values at ``tq``.
    """
    j = np.clip(np.searchsorted(t_src, tq, side="right"), 1, len(t_src) - 1)
    return np.unique(np.r_[j - 1, j])


def interp_linear(t_src: np.ndarray, x_src: np.ndarray, t_query: np.ndarray,
                  max_gap_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of x_src (K, ...) at t_query (N,) → (N, ...), valid (N,)."""
    t_src = np.asarray(t_src, dtype=np.float64)
    x = np.asarray(x_src, dtype=np.float64)
    if len(t_src) == 1:
        return np.repeat(x[:1], len(t_query), axis=0), np.asarray(t_query) == t_src[0]
    gap = default_max_gap(t_src) if max_gap_s is None else max_gap_s
    tq, valid = _bracket(t_src, np.asarray(t_query, dtype=np.float64), gap)
    j = np.clip(np.searchsorted(t_src, tq, side="right"), 1, len(t_src) - 1)
    a = ((tq - t_src[j - 1]) / (t_src[j] - t_src[j - 1])).reshape((-1,) + (1,) * (x.ndim - 1))
    return np.take(x, j - 1, axis=0) * (1 - a) + np.take(x, j, axis=0) * a, valid  # np.take: faster row gathers


def slerp(t_src: np.ndarray, q_src_wxyz: np.ndarray, t_query: np.ndarray,
          max_gap_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spherical interpolation of unit quaternions (K, 4) wxyz at t_query → (N, 4) with qw ≥ 0, valid."""
    t_src = np.asarray(t_src, dtype=np.float64)
    rot = Rotation.from_quat(np.asarray(q_src_wxyz, dtype=np.float64), scalar_first=True)
    if len(t_src) == 1:
        q = np.repeat(rot.as_quat(scalar_first=True), len(t_query), axis=0)
        return q * np.where(q[:, :1] < 0, -1.0, 1.0), np.asarray(t_query) == t_src[0]
    gap = default_max_gap(t_src) if max_gap_s is None else max_gap_s
    tq, valid = _bracket(t_src, np.asarray(t_query, dtype=np.float64), gap)
    q = _slerp_between(t_src, rot.as_quat(scalar_first=True), tq)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0), valid


def _slerp_between(t_src: np.ndarray, q: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Unit quaternions (K, 4) wxyz at t_src, interpolated on the sphere at tq (inside [t_src[0], t_src[-1]]).

    The textbook formula on the two bracketing samples, along the shorter arc — what scipy's
    Slerp gives, in plain numpy (Slerp rotates every source sample first; this is per query).
    """
    j = np.clip(np.searchsorted(t_src, tq, side="right"), 1, len(t_src) - 1)
    a = ((tq - t_src[j - 1]) / (t_src[j] - t_src[j - 1]))[:, None]
    q0, q1 = q[j - 1], q[j]
    d = np.sum(q0 * q1, axis=1, keepdims=True)
    q1 = np.where(d < 0, -q1, q1)  # q and −q are the same rotation: take the shorter way
    d = np.abs(d)
    # Half the angle between them, from atan2 (arccos of a dot product near 1 loses precision).
    half = np.arctan2(np.linalg.norm(q1 - d * q0, axis=1, keepdims=True), d)
    sin = np.sin(half)
    tiny = sin < 1e-12
    w0 = np.where(tiny, 1.0 - a, np.sin((1.0 - a) * half) / np.where(tiny, 1.0, sin))
    w1 = np.where(tiny, a, np.sin(a * half) / np.where(tiny, 1.0, sin))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def world_to_wrist(kp_world: np.ndarray, wrist_p: np.ndarray, wrist_q_wxyz: np.ndarray) -> np.ndarray:
    """Keypoints (N, 21, 3) in the world → the wrist frame: R_wᵀ (kp − p_w)."""
    R = Rotation.from_quat(wrist_q_wxyz, scalar_first=True).as_matrix()
    return (kp_world - wrist_p[:, None, :]) @ R  # row k: (kp_k − p)ᵀ R = (Rᵀ (kp_k − p))ᵀ


def wrist_to_world(kp_wrist: np.ndarray, wrist_p: np.ndarray, wrist_q_wxyz: np.ndarray) -> np.ndarray:
    """Keypoints (N, 21, 3) in the wrist frame → the world: p_w + R_w kp."""
    R = Rotation.from_quat(wrist_q_wxyz, scalar_first=True).as_matrix()
    return wrist_p[:, None, :] + kp_wrist @ np.swapaxes(R, 1, 2)


def resample_hand(t_src: np.ndarray, wrist_p: np.ndarray, wrist_q: np.ndarray, kp_world: np.ndarray,
                  t_query: np.ndarray) -> dict[str, np.ndarray]:
    """One hand at the query times: wrist pose, wrist-frame and world keypoints, valid."""
    gap = default_max_gap(t_src)
    p, v1 = interp_linear(t_src, wrist_p, t_query, gap)
    q, v2 = slerp(t_src, wrist_q, t_query, gap)
    i = _support(t_src, np.clip(t_query, t_src[0], t_src[-1])) if len(t_src) > 1 else np.arange(len(t_src))
    kw, _ = interp_linear(t_src[i], world_to_wrist(kp_world[i], wrist_p[i], wrist_q[i]), t_query, gap)
    return {"p": p, "q": q, "kp_wrist": kw, "kp_world": wrist_to_world(kw, p, q), "valid": v1 & v2}
