"""One way to act: every actor is a ``Policy`` and every episode, in any world, is one ``rollout``.

Random knots, uniform random controls, holding still, the scripted person (live or replayed, with
or without noise), a planner (CEM/MPPI with the world model's cost, the dream's own state, or the
true simulator as the sim-oracle) and the actor trained in imagination all meet the same three
calls, so the closed-loop table, ``egoworld dream``'s policy ranking and anything else that plays
episodes compare like with like. Environments are Gymnasium envs (``SimEnv``, ``FilteredSimEnv``,
``DreamEnv``) whose ``info`` carries ``progress`` and ``success``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from egoworld.actions import CONTROL_DIM, CONTROL_HIGH, CONTROL_LOW, clip_control
from egoworld.imagine.plan import MPC, Planner, PlannerConfig, make_planner


class Policy(Protocol):
    name: str
    replan_seconds: list[float]

    def reset(self, env: Any, obs: dict, key: int) -> None:
        """A new episode in ``env`` from ``obs``; ``key`` seeds anything random (same key → same episode)."""

    def act(self, obs: dict) -> np.ndarray:
        """The 20-D control for this frame."""

    def observe(self, control: np.ndarray, obs: dict) -> None:
        """What ``control`` led to (filters and planners keep their window of frames up to date)."""


class BasePolicy:
    name = "policy"

    def __init__(self) -> None:
        self.replan_seconds: list[float] = []

    def reset(self, env: Any, obs: dict, key: int) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        raise NotImplementedError

    def observe(self, control: np.ndarray, obs: dict) -> None:
        pass


class RandomKnots(BasePolicy):
    """Uniform random knots in a planner's own parametrisation (one control held ``repeat`` frames)."""

    name = "random"

    def __init__(self, cfg: PlannerConfig, name: str = "random") -> None:
        super().__init__()
        self.p, self.name = Planner(cfg), name
        self.queue: list[np.ndarray] = []

    def reset(self, env: Any, obs: dict, key: int) -> None:
        self.p.reset(key)
        self.queue = []

    def act(self, obs: dict) -> np.ndarray:
        if not self.queue:
            self.queue = list(self.p.param.controls(self.p.random_knots(1))[0][: self.p.cfg.repeat])
        return self.queue.pop(0)


class UniformRandom(BasePolicy):
    """Uniform controls over the whole control box, a fresh one every frame."""

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        super().__init__()
        self.seed, self.name = seed, name
        self.rng = np.random.default_rng(seed)

    def reset(self, env: Any, obs: dict, key: int) -> None:
        self.rng = np.random.default_rng([self.seed, key])

    def act(self, obs: dict) -> np.ndarray:
        return self.rng.uniform(CONTROL_LOW, CONTROL_HIGH).astype(np.float32)


class Still(BasePolicy):
    """Hold still, hands open: the zero control."""

    name = "still"

    def act(self, obs: dict) -> np.ndarray:
        return np.zeros(CONTROL_DIM, np.float32)


class Scripted(BasePolicy):
    """The scripted person's task behaviour, live, from the simulator's current state (``SimEnv`` only)."""

    name = "scripted"

    def reset(self, env: Any, obs: dict, key: int) -> None:
        from egoworld.imagine.goals import scripted_controls

        self.gen = scripted_controls(env, key)

    def act(self, obs: dict) -> np.ndarray:
        return next(self.gen)


class Replay(BasePolicy):
    """The scripted person's recorded controls from a start's frame on (sim truth; evaluation only),
    optionally with smooth noise of ``noise`` × each control's range — the person made clumsier, one
    policy per noise level, for ranking policies whose real quality is graded."""

    def __init__(self, starts: Any, noise: float = 0.0, seed: int = 0, name: str | None = None) -> None:
        super().__init__()
        self.starts, self.noise, self.seed = starts, float(noise), seed
        self.name = name or ("scripted" if not noise else f"scripted+{noise:g}")
        self._cache: dict[str, np.ndarray] = {}
        self._controls = np.zeros((0, CONTROL_DIM))
        self._t = 0

    def reset(self, env: Any, obs: dict, key: int) -> None:
        from egoworld.capture.sim.replay import recorded_controls

        row = self.starts.rows[key]
        path = row.get("session_path")
        if path not in self._cache:
            self._cache[path] = recorded_controls(path) if path else np.zeros((0, CONTROL_DIM))
        self._controls = self._cache[path][row["frame"]:]
        self._t = 0
        self.rng = np.random.default_rng([self.seed, key])
        self._eps = np.zeros(CONTROL_DIM)

    def act(self, obs: dict) -> np.ndarray:
        c = self._controls[self._t] if self._t < len(self._controls) else np.zeros(CONTROL_DIM)
        self._t += 1
        if self.noise:  # AR(1) noise: a steady drift off the person's line, not frame-to-frame jitter
            self._eps = 0.8 * self._eps + 0.6 * self.rng.standard_normal(CONTROL_DIM)
            c = c + self.noise * (CONTROL_HIGH - CONTROL_LOW) * self._eps
        return clip_control(c).astype(np.float32)


CostFactory = Callable[[Any, dict], Callable[[np.ndarray], np.ndarray]]


class PlannerPolicy(BasePolicy):
    """A planner in receding horizon; ``cost(env, obs)`` builds the episode's rollout cost (world model,
    the env's own model state, or the true simulator for the sim-oracle)."""

    def __init__(self, cfg: PlannerConfig, cost: CostFactory, name: str = "planner") -> None:
        super().__init__()
        self.cfg, self.make_cost, self.name = cfg, cost, name

    def reset(self, env: Any, obs: dict, key: int) -> None:
        self.cost = self.make_cost(env, obs)
        self.mpc = MPC(make_planner(self.cfg), self.cost)
        self.mpc.reset(key)
        self.replan_seconds = []

    def act(self, obs: dict) -> np.ndarray:
        n = len(self.mpc.replans)
        t0 = time.perf_counter()
        c = self.mpc.act()
        if len(self.mpc.replans) > n:  # a replan happened: filter + plan
            self.replan_seconds.append(time.perf_counter() - t0)
        return c

    def observe(self, control: np.ndarray, obs: dict) -> None:
        if hasattr(self.cost, "observe"):
            self.cost.observe(obs["image"], control, obs.get("state"), obs.get("objects"))


def world_model_cost(model: Any, context: int, objective: Any = None, goal_image: np.ndarray | None = None) -> CostFactory:
    """Cost factory: ``WorldModelCost`` over the env's head-camera frames (the person's hand scale from ``env.person``)."""
    from egoworld.capture.sim.catalog import person as person_spec
    from egoworld.imagine.plan import WorldModelCost

    def make(env: Any, obs: dict) -> WorldModelCost:
        wm = WorldModelCost(model, person_spec(env.person).hand_scale, context, objective, goal_image)
        wm.observe(obs["image"], state=obs.get("state"), objects=obs.get("objects"))
        return wm

    return make


def latent_cost(model: Any, objective: Any = None) -> CostFactory:
    """Cost factory: imagine from the env's own model state (``DreamEnv`` / ``FilteredSimEnv``)."""
    from egoworld.imagine.plan import LatentCost

    return lambda env, obs: LatentCost(model, env, objective)


def sim_cost(terminal: float = 1.0) -> CostFactory:
    """Cost factory: the sim-oracle's rollouts in the true simulator (``SimEnv``)."""
    from egoworld.imagine.plan import SimCost

    return lambda env, obs: SimCost(env, terminal)


class ActorPolicy(BasePolicy):
    """The actor trained in imagination, on the observation's latent (the dream's state, or the filter of real frames)."""

    def __init__(self, actor: Any, name: str = "actor", deterministic: bool = True) -> None:
        super().__init__()
        self.actor, self.name, self.deterministic = actor.eval(), name, deterministic

    def act(self, obs: dict) -> np.ndarray:
        import torch

        with torch.no_grad():
            feat = torch.from_numpy(np.asarray(obs["latent"], dtype=np.float32))[None]
            return self.actor.control(feat, self.deterministic)[0].numpy().astype(np.float32)


def rollout(policy: Policy, env: Any, key: int, seed: int | None = None, options: dict | None = None,
            record: bool = False) -> dict[str, Any]:
    """One episode: reset ``env`` (``seed``, ``options``), let ``policy`` act until the env ends it.

    Returns the summed reward (``return``), ``success`` and the step it first came (success in ``info``
    or termination), progress at the start, end and its best, steps, wall seconds, replan times, and
    the rendered frames when ``record``.
    """
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed, options=options)
    policy.reset(env, obs, key)
    p0 = float(info["progress"])
    best, first, steps, total = p0, None, 0, 0.0
    frames = [env.render()] if record else []
    while True:
        control = policy.act(obs)
        obs, r, terminated, truncated, info = env.step(control)
        steps += 1
        total += float(r)
        policy.observe(control, obs)
        if record:
            frames.append(env.render())
        best = max(best, float(info["progress"]))
        if first is None and (info.get("success") or terminated):
            first = steps
        if terminated or truncated:
            break
    out = {"return": total, "success": first is not None, "success_step": first, "progress_start": p0,
           "progress_end": float(info["progress"]), "progress_max": best, "steps": steps,
           "seconds": time.perf_counter() - t0, "replan_seconds": list(getattr(policy, "replan_seconds", []))}
    if record:
        out["frames"] = frames
    return out


__all__ = ["ActorPolicy", "BasePolicy", "CostFactory", "Policy", "PlannerPolicy", "RandomKnots", "Replay", "Scripted",
           "Still", "UniformRandom", "latent_cost", "rollout", "sim_cost", "world_model_cost"]
