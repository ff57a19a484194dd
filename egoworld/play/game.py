"""One player's session: the dream and its simulator twin, stepped by the same controls, recorded as it goes.

``load_world`` does the slow, shared part once (the model, real starts filtered over the model's
context, what a saved episode needs for lineage); each browser connection gets its own ``Game``
(its own envs, held keys, grips and recording). The game is plain Python — the server, the test
and ``bench/play.py`` all drive the same ``reset`` / ``key`` / ``step`` calls.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoworld import runs
from egoworld.actions import action_to_control
from egoworld.imagine.dream import DreamEnv, FilteredSimEnv, Starts, WindowReader, load_starts, select_episodes
from egoworld.imagine.plan import Objective, PlannerConfig
from egoworld.imagine.policy import PlannerPolicy, latent_cost
from egoworld.model import WorldModel
from egoworld.play.keys import BY_CODE, COMMANDS, GRIP_COLUMNS, KEYS, control_from_keys, toggle_grip

MAX_STEPS = 10**9  # a played episode ends when the player says so, not at a horizon
# The planner a player hands over to: the dream-ranking planner's size (a replan every 3 frames
# stays well under a frame's budget on a CPU), CEM over the wrists and grips.
PLAY_PLANNER = dict(method="cem", horizon=4, repeat=3, samples=32, iterations=2)


class PlayError(ValueError):
    """Bad input to ``egoworld play``: the message is one line that names the file and the problem."""


@dataclass
class World:
    """What every game of one server shares: the model, the real starts, where saved episodes go."""

    model: WorldModel
    run: Path
    checkpoint: Path
    data: Path
    task: str
    starts: Starts
    grips: np.ndarray  # (N, 2) each start's grips as recorded just before it
    twin: bool
    out: Path
    sample: bool = False
    seed: int = 0
    planner: PlannerConfig = field(default_factory=lambda: PlannerConfig(**PLAY_PLANNER))

    @property
    def fps(self) -> float:
        return float(self.starts.fps)

    def describe(self) -> dict[str, Any]:
        """What the page shows about the session (no absolute paths beyond what the person passed)."""
        return {"run": str(self.run), "data": str(self.data), "task": self.task, "starts": len(self.starts),
                "twin": self.twin, "fps": self.fps, "image_size": int(self.model.cfg.image_size),
                "reward_heads": int(self.model.cfg.reward_heads), "sample": self.sample, "out": str(self.out),
                "keys": [k.to_dict() for k in KEYS]}


def load_model_with_decoder(run: str | Path) -> tuple[WorldModel, Path]:
    """The run's model and checkpoint folder; ``PlayError`` when it has no decoder that can show a frame."""
    try:
        ckpt = runs.resolve(run)
        model, cfg = runs.load_model(ckpt)
    except (FileNotFoundError, ValueError) as e:  # no checkpoint; a damaged file (RunError)
        raise PlayError(str(e).splitlines()[0]) from None
    except RuntimeError:
        try:
            runs.load_model(ckpt, decoder=False)
        except (RuntimeError, ValueError) as e:  # the message names the weights file and what does not match
            raise PlayError(str(e).splitlines()[0]) from None
        raise PlayError(f"{ckpt}: no decoder — its decoder weights are missing or do not match this egoworld's decoder, so "
                        "no frame can be shown; play needs a run trained with a decoder (`egoworld plan` works without)") from None
    if cfg.image_scale <= 0 and cfg.overshoot_image_scale <= 0:
        raise PlayError(f"{ckpt}: no decoder — the run was trained without an image loss (image_scale 0), so its "
                        "decoder never learned to show a frame")
    return model.eval(), ckpt


def load_world(run: str | Path, data: str | Path | None = None, task: str = "push", starts: int = 16,
               split: str = "all", twin: bool | None = None, out: str | Path | None = None, sample: bool = False,
               seed: int = 0) -> World:
    """Load the model and ``starts`` real starting points of ``task``; ``PlayError`` (one line) on bad input.

    twin: the simulator beside the dream (None: when the starts' sessions are simulated and on disk).
    out: where saved episodes go (default: ``play/`` beside the store, where ``consent revoke`` looks).
    """
    from egoworld.dataset.store import open_store

    run = Path(run)
    model, ckpt = load_model_with_decoder(run)
    if not data:
        data = runs.read_lineage(run).get("data")
        if not data:
            raise PlayError(f"{run}: its lineage.json names no data set; pass --data STORE")
        if not Path(data).exists():
            raise PlayError(f"{run}: the store its lineage.json names ({data}) is not here; pass --data STORE")
    try:
        store = open_store(data)
    except (FileNotFoundError, ValueError) as e:
        raise PlayError(str(e).splitlines()[0]) from None
    try:
        select_episodes(store.root, task, split)
    except ValueError as e:
        if " episode of task " not in str(e):  # e.g. an unknown split name: its own message says so
            raise PlayError(str(e).splitlines()[0]) from None
        tasks = sorted({str(r.get("task_id")) for r in store.episode_rows()})
        raise PlayError(f"{store.root}: no episode of task {task!r}{'' if split == 'all' else f' in the {split} split'} "
                        f"(tasks here: {', '.join(tasks)}); pass --task, --split or another --data") from None
    st = load_starts(model, store.root, task, n=starts, context=model.cfg.context, horizon=0, split=split, seed=seed)
    reader = WindowReader(store, model.cfg.image_size)
    grips = np.stack([action_to_control(reader.episode(r["episode_index"])["action"][max(r["frame"] - 1, 0)])[[*GRIP_COLUMNS]]
                      for r in st.rows]).clip(0, 1)
    reader.close()
    on_disk = any(r.get("session_path") and (Path(r["session_path"]) / "truth").is_dir() for r in st.rows)
    if twin and not on_disk:
        raise PlayError(f"{store.root}: no start's session is a simulated one on disk (truth/), so there is no simulator "
                        "twin to restore; drop --twin")
    return World(model, run, ckpt, Path(store.root), task, st, grips, on_disk if twin is None else twin,
                 Path(out) if out else Path(store.root).parent / "play", sample, seed)


def png_data_url(image: np.ndarray) -> str:
    """An (H, W, 3) uint8 RGB frame as a PNG data URL: lossless, so equal frames give equal strings."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


@dataclass
class Recording:
    """What one played episode did: a frame, body state, progress and continuation per step, a control between."""

    start: int
    grips0: np.ndarray
    frames: list[np.ndarray] = field(default_factory=list)
    states: list[np.ndarray] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    cont: list[float] = field(default_factory=list)
    controls: list[np.ndarray] = field(default_factory=list)
    by: list[str] = field(default_factory=list)  # who chose each control: "person" or "planner"

    def add(self, obs: dict, info: dict) -> None:
        self.frames.append(obs["image"])
        self.states.append(obs["state"].astype(np.float64))
        self.progress.append(float(info["progress"]))
        self.cont.append(float(info["cont"]))


class Game:
    """The dream (and its twin) for one player. ``reset`` → a frame; ``key`` and ``step`` → the next ones.

    Frames are plain dicts ready for JSON: the decoded dream frame (and the twin's) as PNG data URLs,
    the step, the reward head's progress, the continuation head's P(continue), the reward ensemble's
    disagreement (std over heads; None with one head), the twin's true progress, and who is acting.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.model = world.model
        self.dream = DreamEnv(world.model, world.starts, max_steps=MAX_STEPS, obs_keys=("image", "state"),
                              sample=world.sample)
        self.twin = (FilteredSimEnv(world.model, world.starts, world.task, max_steps=MAX_STEPS, obs_keys=("image",))
                     if world.twin else None)
        self.planner = PlannerPolicy(world.planner, latent_cost(world.model, Objective()), name="planner")
        self.held: set[str] = set()
        self.grips = np.zeros(2)
        self.planner_on = False
        self.twin_on = False
        self.start = -1
        self.steps = 0
        self.rec: Recording | None = None
        self._obs: dict = {}
        self._frame: dict = {}

    # ------------------------------------------------------------------ episodes
    @torch.no_grad()
    def reset(self, start: int | None = None) -> dict:
        """Back to real start ``start`` (default: the next one): its filtered state, decoded."""
        n = len(self.world.starts)
        i = (self.start + 1) % n if start is None else int(start)
        if not 0 <= i < n:
            raise PlayError(f"start {i} out of range (0…{n - 1})")
        t0 = time.perf_counter()
        self.start, self.steps = i, 0
        self.grips = self.world.grips[i].copy()
        obs, info = self.dream.reset(seed=self.world.seed, options={"start": i})
        self._obs = obs
        twin = None
        # a store may mix simulated sessions with real ones: the twin follows the starts it can restore
        self.twin_on = self.twin is not None and bool(self.world.starts.rows[i].get("session_path"))
        if self.twin_on:
            twin = self.twin.reset(seed=self.world.seed, options={"start": i})
        self.rec = Recording(i, self.grips.copy())
        self.rec.add(obs, info)
        if self.planner_on:
            self.planner.reset(self.dream, obs, self.start)
        self._frame = self._make_frame(obs, info, twin, time.perf_counter() - t0, reset=True)
        return self._frame

    def restart(self) -> dict:
        """The same start again: the frame it began with."""
        return self.reset(self.start)

    @torch.no_grad()
    def step(self) -> dict:
        """One frame: the planner's control when it acts, else the keys held; the dream and twin both take it."""
        if self.rec is None:
            self.reset()
        t0 = time.perf_counter()
        if self.planner_on:
            control = np.asarray(self.planner.act(self._obs), dtype=np.float64)
            self.grips = control[list(GRIP_COLUMNS)].clip(0, 1)  # taking back keeps what the planner holds
        else:
            control = control_from_keys(self.held, self.grips)
        obs, _, _, _, info = self.dream.step(control)
        if self.planner_on:
            self.planner.observe(control, obs)
        twin = self.twin.step(control) if self.twin_on else None
        self._obs = obs
        self.steps += 1
        assert self.rec is not None
        self.rec.add(obs, info)
        self.rec.controls.append(control)
        self.rec.by.append("planner" if self.planner_on else "person")
        self._frame = self._make_frame(obs, info, twin, time.perf_counter() - t0, control=control)
        return self._frame

    # ------------------------------------------------------------------ input
    def key(self, code: str, down: bool) -> dict | None:
        """A key went down or up. Held keys shape the next ``step``; grip keys toggle; commands answer at once."""
        k = BY_CODE.get(code)
        if k is None or k.kind == "page":
            return None
        if k.kind == "hold":
            (self.held.add if down else self.held.discard)(code)
            return None
        if not down:
            return None
        if k.kind == "grip":
            self.grips = toggle_grip(code, self.grips)
            return None
        return self.command(COMMANDS[code])

    def command(self, name: str, **kw: Any) -> dict:
        """``restart``, ``new`` (next start, or ``start=i``), ``planner`` (toggle, or ``on=bool``), ``save``."""
        if name == "restart":
            return self.restart()
        if name == "new":
            return self.reset(kw.get("start"))
        if name == "planner":
            self.set_planner(not self.planner_on if kw.get("on") is None else bool(kw["on"]))
            return dict(self._frame, planner=self.planner_on)
        if name == "save":
            return {"type": "saved", **self.save()}
        raise PlayError(f"unknown command {name!r}; known: restart, new, planner, save")

    def set_planner(self, on: bool) -> None:
        """Hand over to the planner (it plans from the dream's own state) or take back."""
        if on and not self.planner_on:
            self.planner.reset(self.dream, self._obs, self.start)
        self.planner_on = on

    # ------------------------------------------------------------------ saving
    def save(self, out: str | Path | None = None) -> dict:
        """Write the episode played since the last reset as a synthetic episode (source ``play``)."""
        from egoworld.play.record import save_episode

        if self.rec is None or not self.rec.controls:
            raise PlayError("nothing to save yet: take at least one step first")
        return save_episode(self.world, self.rec, out or self.world.out)

    def close(self) -> None:
        if self.twin is not None:
            self.twin.close()

    # ------------------------------------------------------------------ what the page gets
    def _make_frame(self, obs: dict, info: dict, twin: tuple | None, seconds: float, reset: bool = False,
                    control: np.ndarray | None = None) -> dict:
        feat = self.dream.model_state.feat()
        members = self.model.reward_members(feat)[:, 0]
        row = self.world.starts.rows[self.start]
        frame = {"type": "frame", "step": self.steps, "start": self.start, "reset": reset,
                 "dream": png_data_url(obs["image"]), "progress": float(info["progress"]), "cont": float(info["cont"]),
                 "disagreement": float(members.std()) if len(members) > 1 else None,
                 "done": bool(info["success"]), "planner": self.planner_on, "grips": [float(g) for g in self.grips],
                 "control": None if control is None else [round(float(c), 4) for c in control],
                 "ms": round(seconds * 1000, 2), "sim": None, "sim_progress": None, "sim_success": None,
                 "episode": {"episode_index": int(row["episode_index"]), "frame": int(row["frame"]),
                             "session_id": row["session_id"], "place": row.get("place"), "person": row.get("person")}}
        if reset:
            frame["real"] = png_data_url(self.world.starts.image[self.start].permute(1, 2, 0).numpy())
        if twin is not None:
            t_obs, t_info = twin[0], twin[-1]
            frame.update(sim=png_data_url(t_obs["image"]), sim_progress=float(t_info["progress"]),
                         sim_success=bool(t_info.get("success", False)))
        return frame
