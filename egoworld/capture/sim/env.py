"""The simulator as a Gymnasium environment: the same 20-D control that planners, policies and the
scripted person use, so a policy runs unchanged here and in the dream environment.

Observations: the head camera image and the body state (``egoworld.state``: head position +
quaternion, then each wrist's). Reward: the change in the task's dense progress; terminated on success.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from egoworld.actions import CONTROL_HIGH, CONTROL_LOW, CONTROL_DIM, clip_control
from egoworld.capture.sim.catalog import TASKS
from egoworld.capture.sim.record import Episode, SessionConfig, setup_episode
from egoworld.state import STATE_BOUND, STATE_DIM, body_state


class SimEnv(gym.Env):
    """One task in one room; each reset draws a fresh layout (or restores a recorded frame)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, task: str = "push", place: int = 0, person: int = 0, width: int = 64, height: int = 64,
                 max_steps: int = 150, start: str = "table", render_mode: str | None = "rgb_array") -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        if start not in ("table", "scripted"):
            raise ValueError("start must be 'table' (standing at the table, hands ready) or 'scripted' (the person's own start)")
        self.task_name, self.place, self.person = task, place, person
        self.width, self.height, self.max_steps, self.start = width, height, max_steps, start
        self.render_mode = render_mode
        self.action_space = spaces.Box(CONTROL_LOW.astype(np.float32), CONTROL_HIGH.astype(np.float32), (CONTROL_DIM,), np.float32)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (height, width, 3), np.uint8),
            "state": spaces.Box(-STATE_BOUND, STATE_BOUND, (STATE_DIM,), np.float32),
            # the object tracker: the task's object and its goal, world frame (``TaskState.track_points``)
            "objects": spaces.Box(-STATE_BOUND, STATE_BOUND, (6,), np.float32),
        })
        self._ep: Episode | None = None
        self._episodes = 0
        self._steps = 0
        self._progress = 0.0

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = options or {}
        if self._ep is not None:
            self._ep.sim.close()
        episode_seed = int(self.np_random.integers(2**31))
        if "session" in options:
            from egoworld.capture.sim.replay import load_simulator, recorded_states

            sim, task = load_simulator(Path(options["session"]))
            sim.set_state(recorded_states(options["session"])[int(options.get("frame", 0))])
            sim.width, sim.height = self.width, self.height
            self._ep = Episode(sim, task, None, task.layout, "", None, {}, None, None)  # type: ignore[arg-type]
        else:
            cfg = SessionConfig(index=0, seed=episode_seed, place=int(options.get("place", self.place)),
                                person=int(options.get("person", self.person)), task=self.task_name,
                                width=self.width, height=self.height,
                                # "table": skip the walk — stand at the table looking at the props, hands raised
                                # and open (the ready pose of the behaviour mix, so closed-loop starts lie inside
                                # recorded play)
                                start="table" if self.start == "table" else "walk")
            self._ep = setup_episode(cfg)
        self._episodes += 1
        self._steps = 0
        self._progress = self._ep.task.progress()
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        assert self._ep is not None, "call reset() first"
        control = clip_control(np.asarray(action, dtype=np.float64))
        self._ep.sim.step(control)
        self._steps += 1
        progress = self._ep.task.progress()
        reward = float(progress - self._progress)
        self._progress = progress
        terminated = bool(self._ep.task.success())
        truncated = self._steps >= self.max_steps
        return self._obs(), reward, terminated, truncated, self._info()

    def render(self) -> np.ndarray:
        assert self._ep is not None, "call reset() first"
        return self._ep.sim.render()

    def close(self) -> None:
        if self._ep is not None:
            self._ep.sim.close()
            self._ep = None

    # -- helpers -------------------------------------------------------------------------------
    @property
    def sim(self):
        return self._ep.sim if self._ep else None

    @property
    def task(self):
        return self._ep.task if self._ep else None

    def _obs(self) -> dict:
        return {"image": self._ep.sim.render(), "state": body_state(self._ep.sim.body_pose()),
                "objects": self._ep.task.track_points().astype(np.float32).ravel()}

    def _info(self) -> dict:
        return {"progress": self._progress, "success": bool(self._ep.task.success()), "steps": self._steps}
