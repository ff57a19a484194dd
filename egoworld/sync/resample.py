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
from scipy.spatial.transform import Rotation, Slerp

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
    return x[j - 1] * (1 - a) + x[j] * a, valid


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
    q = Slerp(t_src, rot)(tq).as_quat(scalar_first=True)
    return q * np.where(q[:, :1] < 0, -1.0, 1.0), valid


def world_to_wrist(kp_world: np.ndarray, wrist_p: np.ndarray, wrist_q_wxyz: np.ndarray) -> np.ndarray:
    """Keypoints (N, 21, 3) in the world → the wrist frame: R_wᵀ (kp − p_w)."""
    R = Rotation.from_quat(wrist_q_wxyz, scalar_first=True).as_matrix()
    return np.einsum("nji,nkj->nki", R, kp_world - wrist_p[:, None, :])


def wrist_to_world(kp_wrist: np.ndarray, wrist_p: np.ndarray, wrist_q_wxyz: np.ndarray) -> np.ndarray:
    """Keypoints (N, 21, 3) in the wrist frame → the world: p_w + R_w kp."""
    R = Rotation.from_quat(wrist_q_wxyz, scalar_first=True).as_matrix()
    return wrist_p[:, None, :] + np.einsum("nij,nkj->nki", R, kp_wrist)


def resample_hand(t_src: np.ndarray, wrist_p: np.ndarray, wrist_q: np.ndarray, kp_world: np.ndarray,
                  t_query: np.ndarray) -> dict[str, np.ndarray]:
    """One hand at the query times: wrist pose, wrist-frame and world keypoints, valid."""
    gap = default_max_gap(t_src)
    p, v1 = interp_linear(t_src, wrist_p, t_query, gap)
    q, v2 = slerp(t_src, wrist_q, t_query, gap)
    kw, _ = interp_linear(t_src, world_to_wrist(kp_world, wrist_p, wrist_q), t_query, gap)
    return {"p": p, "q": q, "kp_wrist": kw, "kp_world": wrist_to_world(kw, p, q), "valid": v1 & v2}
