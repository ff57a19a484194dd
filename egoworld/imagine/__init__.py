"""Imagination: rollouts, planners, the dream environment, policies learned in imagination, synthetic episodes.

Exports load lazily (module ``__getattr__``), so ``egoworld.imagine.cli`` can register its commands
without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # the dream environment and policies learned in it (dream.py, actor_critic.py, synthetic.py)
    "DreamEnv": "egoworld.imagine.dream",
    "FilteredSimEnv": "egoworld.imagine.dream",
    "Starts": "egoworld.imagine.dream",
    "load_starts": "egoworld.imagine.dream",
    "ACConfig": "egoworld.imagine.actor_critic",
    "train_actor_critic": "egoworld.imagine.actor_critic",
    "load_policy": "egoworld.imagine.actor_critic",
    "export_synthetic": "egoworld.imagine.synthetic",
    # planning (plan.py, goals.py)
    "PlannerConfig": "egoworld.imagine.plan",
    "CEM": "egoworld.imagine.plan",
    "MPPI": "egoworld.imagine.plan",
    "MPC": "egoworld.imagine.plan",
    "Objective": "egoworld.imagine.plan",
    "WorldModelCost": "egoworld.imagine.plan",
    "make_planner": "egoworld.imagine.plan",
    "wm_planner": "egoworld.imagine.plan",
    "goal_image": "egoworld.imagine.goals",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'egoworld.imagine' has no attribute {name!r}")


__all__ = sorted(_LAZY)
