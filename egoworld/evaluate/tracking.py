"""How well the imagined tracked object follows the real one — where it moved, and where it did not.

A planner scores plans by where the imagined object ends up (``Objective.track``), so what matters is the
step that moves it: on held-out clips the model filters ``context`` frames and imagines more under the
recorded actions (``openloop.rollout_metrics`` does both once for every metric); the imagined object's
distance from the tracked one after ``horizon`` steps is split by whether the object moved more than
``MOVED_M`` in the world over those steps. "Stays put" (the object's own displacement) is the baseline a
model without contact would score on the moved clips; on the still clips the error is drift the model made up.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egoworld.model import WorldModel
from egoworld.model.config import BODY_DIM
from egoworld.model.nets import EGO_POS_SCALE

MOVED_M = 0.02
TRACK_HORIZON = 8  # imagined steps the error is read after (a planner looks 12 frames ahead)


def clip_errors(model: WorldModel, imagined_b: torch.Tensor, batch: dict[str, torch.Tensor], context: int,
                horizon: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per clip: the imagined object's distance (m) from the tracked one after ``horizon`` imagined steps
    (``imagined_b`` (B, ≥horizon, body), the body part of the states imagined after ``context`` frames), and
    how far the object really moved over them; None for a model without tracked points or a batch without
    a tracker."""
    if model.cfg.track_points < 1 or imagined_b is None or "objects" not in batch:
        return None
    C, H = context, horizon
    target, _ = model.body_target(batch["state"][:, C + H - 1], batch["objects"][:, C + H - 1])
    p = slice(BODY_DIM, BODY_DIM + 3)
    err = ((imagined_b[:, H - 1, p] - target[:, p]) * EGO_POS_SCALE).norm(dim=-1)
    moved = (batch["objects"][:, C + H - 1, :3] - batch["objects"][:, C - 1, :3]).float().norm(dim=-1)
    return err, moved


def summarise(err: torch.Tensor, moved: torch.Tensor, horizon: int) -> dict[str, Any]:
    """Medians (m) of the per-clip errors over the moved and the still clips (clips with NaN left out)."""
    ok = torch.isfinite(err) & torch.isfinite(moved)
    err, moved = err[ok], moved[ok]
    hit = moved > MOVED_M

    def med(x: torch.Tensor) -> float | None:
        return round(float(np.median(x.numpy())), 4) if len(x) else None

    return {"horizon": horizon, "moved_threshold_m": MOVED_M,
            "moved": {"n": int(hit.sum()), "median_m": med(err[hit]), "stays_put_m": med(moved[hit])},
            "still": {"n": int((~hit).sum()), "median_drift_m": med(err[~hit])}}
