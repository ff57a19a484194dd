"""Goal images: what the scene looks like when the task is done, for planning by latent distance.

A goal is specified the way a person would show it: a picture of the finished task in the same
room. In the simulator we get one by letting the scripted person do the task in a twin of the
episode (same reset seed → same layout) and rendering the frame at which it first succeeds.
"""
from __future__ import annotations

import numpy as np

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from egoworld.capture.sim.catalog import person as person_spec
from egoworld.capture.sim.env import SimEnv
from egoworld.capture.sim.person import ScriptedPerson


def hold(sim) -> np.ndarray:
    """The control that keeps the body where it is (grips unchanged)."""
    c = np.zeros(20)
    c[[12, 19]] = sim.grips
    return c


def scripted_controls(env: SimEnv, seed: int = 0):
    """The scripted person's task behaviour from the env's current state, then holding still, forever."""
    actor = ScriptedPerson(env.sim, person_spec(env.person), env.task, env.task.layout, np.random.default_rng(seed))
    yield from getattr(actor, env.task_name)()
    while True:
        yield hold(env.sim)


def goal_image(task: str, place: int, person: int, reset_seed: int, size: int = 128, max_steps: int = 300,
               seed: int = 0) -> np.ndarray | None:
    """The head camera's view when the scripted person first completes ``task`` in this episode's twin.

    ``None`` when the person does not succeed within ``max_steps`` frames.
    """
    env = SimEnv(task, place, person, width=size, height=size, max_steps=max_steps)
    try:
        env.reset(seed=reset_seed)
        controls = scripted_controls(env, seed)
        for _ in range(max_steps):
            env.sim.step(next(controls))
            if env.task.success():
                return env.sim.render()
        return None
    finally:
        env.close()


__all__ = ["goal_image", "hold", "scripted_controls"]
