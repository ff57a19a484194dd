"""Which axes of a camera's gyro are which axes of its picture: measured, not assumed.

A camera's IMU axes are not its optical axes, and "normalised" telemetry does not mean the same
axes on every model. The mapping is one of the 24 rotations that permute the axes with signs;
this ranks them by how well the gyro, turned by each, matches the rotation the picture shows
(the normalised correlation sync itself uses, at the best lag within ±``max_lag_s``). Over
``horizon_s`` > one frame the rates are compared as rotation over that span: in-camera
stabilisation removes fast shake from the picture but leaves the slower turns, which then still
say which axis is which. The importer's per-model table (capture/importers/camera.py) was made
with this and is re-checked on the real files by tests/test_real_gopro.py.
"""
from __future__ import annotations

import itertools

import numpy as np

from egoworld.sync.evidence import gyro_evidence
from egoworld.sync.visual import VisualRotations


def signed_permutations() -> list[np.ndarray]:
    """The 24 proper rotations whose rows are ± unit axes."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            R = np.zeros((3, 3))
            R[np.arange(3), perm] = signs
            if np.linalg.det(R) > 0:
                out.append(R)
    return out


def rank_axes(vis: VisualRotations, t_ns: np.ndarray, gyro: np.ndarray, horizon_s: float | None = None,
              max_lag_s: float = 1.0, lag_step_s: float = 0.01) -> list[dict]:
    """Every candidate R_camera_imu with its peak correlation and lag, best first.

    ``horizon_s``: compare rotation over this span (default: each frame pair, as sync does).
    """
    t_ref = int(vis.pts_ns[0])
    tv = (vis.pts_ns - t_ref) * 1e-9
    if horizon_s is None:  # the frame pairs themselves
        k = np.flatnonzero(vis.valid)
        t0, t1 = tv[vis.pair[k, 0]], tv[vis.pair[k, 1]]
        video = vis.rotvec[k]
    else:  # the picture's cumulative rotation (small steps add), differenced over horizon_s on a 10 ms grid
        cum = np.zeros((len(tv), 3))
        steps = np.where(vis.valid[:, None], vis.rotvec, 0.0)
        np.add.at(cum, vis.pair[:, 1], steps)
        cum = np.cumsum(cum, axis=0)
        t0 = np.arange(tv[0], tv[-1] - horizon_s, 0.01)
        t1 = t0 + horizon_s
        video = np.stack([np.interp(t1, tv, cum[:, i]) - np.interp(t0, tv, cum[:, i]) for i in range(3)], 1)
    lags = np.arange(-max_lag_s, max_lag_s + 1e-9, lag_step_s)
    base = gyro_evidence(t_ns, gyro, np.eye(3), t_ref)
    lo, hi = base.span
    v = video - video.mean(0)
    out = []
    incs = [base.increments(t0 + lag, t1 + lag) for lag in lags]  # the gyro's rotation per span, IMU axes
    oks = [(t0 + lag >= lo) & (t1 + lag <= hi) for lag in lags]
    for R in signed_permutations():
        best = (-np.inf, 0.0)
        for lag, inc, ok in zip(lags, incs, oks):
            if ok.sum() < 10:
                continue
            g = inc[ok] @ R.T
            a, b = v[ok] - v[ok].mean(0), g - g.mean(0)
            den = np.sqrt(np.sum(a * a) * np.sum(b * b))
            c = float(np.sum(a * b) / den) if den > 0 else 0.0
            if c > best[0]:
                best = (c, float(lag))
        out.append({"R": R, "ncc": best[0], "lag_s": best[1]})
    return sorted(out, key=lambda r: -r["ncc"])
