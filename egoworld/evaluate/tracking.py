"""How well the imagined tracked object follows the real one — where it moved, and where it did not.

A planner scores plans by where the imagined object ends up (``Objective.track``), so what matters is the
step that moves it: on held-out clips the model filters ``context`` frames and imagines ``horizon`` more
under the recorded actions; the imagined object's distance from the tracked one at the last step is
split by whether the object moved more than ``MOVED_M`` in the world over those steps. "Stays put" (the
object's own displacement) is the baseline a model without contact would score on the moved clips;
on the still clips the error is drift the model made up.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egoworld.model import WorldModel
from egoworld.model.config import BODY_DIM
from egoworld.model.nets import EGO_POS_SCALE

MOVED_M = 0.02


@torch.no_grad()
def tracked_error(model: WorldModel, batches: list[dict[str, torch.Tensor]], context: int, horizon: int = 8
                  ) -> dict[str, Any]:
    """Imagined vs tracked object after ``horizon`` steps (metres, medians) on clips of ≥ context + horizon
    frames with ``objects``; {} for a model without tracked points or data without a tracker."""
    if model.cfg.track_points < 1 or not batches or "objects" not in batches[0]:
        return {}
    C, H = context, horizon
    moved_err, moved_by, still_err = [], [], []
    for b in batches:
        if b["image"].shape[1] < C + H:
            continue
        valid = b.get("action_valid")
        posts, _ = model.observe(b["image"][:, :C], b["action"][:, :C], None if valid is None else valid[:, :C],
                                 sample=False, state=b["state"][:, :C], objects=b["objects"][:, :C])
        imagined = model.imagine(posts.last(), b["action"][:, C - 1:C - 1 + H])
        target, _ = model.body_target(b["state"][:, C + H - 1], b["objects"][:, C + H - 1])
        p = slice(BODY_DIM, BODY_DIM + 3)
        err = ((imagined.b[:, -1, p] - target[:, p]) * EGO_POS_SCALE).norm(dim=-1)
        by = (b["objects"][:, C + H - 1, :3] - b["objects"][:, C - 1, :3]).float().norm(dim=-1)
        for e, d in zip(err.tolist(), by.tolist()):
            if not (np.isfinite(e) and np.isfinite(d)):
                continue
            if d > MOVED_M:
                moved_err.append(e)
                moved_by.append(d)
            else:
                still_err.append(e)

    def med(x: list[float]) -> float | None:
        return round(float(np.median(x)), 4) if x else None

    return {"horizon": H, "moved_threshold_m": MOVED_M,
            "moved": {"n": len(moved_err), "median_m": med(moved_err), "stays_put_m": med(moved_by)},
            "still": {"n": len(still_err), "median_drift_m": med(still_err)}}
