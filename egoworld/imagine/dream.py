"""The dream environment: the world model's prior as a Gymnasium env, started from real recorded states.

Why an env: anything that acts — a policy, a planner, the scripted person's recorded controls — talks
to the simulator and to the model through the same contract (20-D control in, observation dict out),
so "how well does it do in the dream?" and "how well does it do for real?" are the same call on two
envs. Both envs here start from the same ``Starts``: recorded frames of real episodes, filtered by the
model (posterior over a few context frames), which is also where the simulator is restored to.

* ``DreamEnv``: ``step`` advances the prior — observation = decoded image (against the real start
  frame, ``model.reference``), the state head's body state and the latent feature; reward = change of
  the reward head's task progress (the simulator's reward is the change of true progress); terminated
  when the continuation head says the episode is over (the data's ``done`` is task success).
* ``FilteredSimEnv``: the simulator (``SimEnv``) with the model's filter run on its real frames, so its
  observation has the same keys and spaces — a policy that reads the latent runs unchanged in both.

The 20-D control becomes the 138-D action the model was trained on through ``egoworld.actions``: head
and wrist deltas are copied, finger keypoints follow from the grip and the person's hand scale
(estimated from the seed episode's recorded finger keypoints).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from egoworld.actions import (
    CONTROL_DIM,
    CONTROL_HIGH,
    CONTROL_LOW,
    clip_control,
    control_to_action,
    hand_slice,
)
from egoworld.model import Noise, Ref, State, WorldModel
from egoworld.model.rssm import cat_states
from egoworld.model.nets import symexp
from egoworld.state import STATE_BOUND, STATE_DIM
from egoworld.video import to_model_frame

OBS_KEYS = ("image", "state", "latent")
PROGRESS = ("head", "track")  # what a dream's reward is the change of (``dream_progress``)


# ---------------------------------------------------------------- control → action


def actions_from_controls(control: np.ndarray, hand_scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Actions (..., 138) for controls (..., 20) with a hand scale per row (..., 2) or shared.

    ``control_to_action`` takes one scale for the whole batch; finger keypoints are linear in the
    scale (the left hand is a mirror), so a per-row scale is a multiplication afterwards.
    """
    control = clip_control(np.asarray(control, dtype=np.float64))
    act = control_to_action(control, 1.0)
    scale = np.broadcast_to(np.asarray(hand_scale, dtype=np.float64), control.shape[:-1] + (2,))
    for s in range(2):
        sl = hand_slice(s)
        act[..., sl.start + 6: sl.stop] *= scale[..., s, None]
    return act


def estimate_hand_scale(action: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each hand's scale (2,) from recorded actions (N, 138): median over valid frames, 1.0 if none."""
    from egoworld.body import hand_scale

    out = np.ones(2)
    for s in range(2):
        sl = hand_slice(s)
        fingers = action[valid, sl.start + 6: sl.stop].reshape(-1, 20, 3)
        if len(fingers):
            kp = np.concatenate([np.zeros((len(fingers), 1, 3)), fingers], 1)
            sc = hand_scale(kp)
            sc = sc[np.isfinite(sc) & (sc > 0.3) & (sc < 3.0)]
            if len(sc):
                out[s] = float(np.median(sc))
    return out


def control_space() -> spaces.Box:
    return spaces.Box(CONTROL_LOW.astype(np.float32), CONTROL_HIGH.astype(np.float32), (CONTROL_DIM,), np.float32)


def observation_space(image_size: int, feat_size: int, keys: Sequence[str] = OBS_KEYS) -> spaces.Dict:
    """The observation both envs give: a subset of image (S, S, 3) uint8, state (21,), latent (F,)."""
    all_spaces = {
        "image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
        "state": spaces.Box(-STATE_BOUND, STATE_BOUND, (STATE_DIM,), np.float32),
        # h is a convex mix of tanh outputs and z is one-hot, so every part lies in [-1, 1]
        "latent": spaces.Box(-1.0, 1.0, (feat_size,), np.float32),
    }
    bad = set(keys) - set(all_spaces)
    if bad:
        raise ValueError(f"unknown observation keys {sorted(bad)}; choose from {OBS_KEYS}")
    return spaces.Dict({k: all_spaces[k] for k in keys})


# ---------------------------------------------------------------- real starting points


@dataclass
class Starts:
    """Real starting points: the model's filtered state at recorded frames, and where each came from.

    ``rows[i]``: episode_index, frame, session_id, session_path (None when the session is not on
    disk), task_id, place, person, length. ``image`` is the real frame at the start (the decoding
    reference), ``hand_scale`` each hand's scale (N, 2).
    """

    filtered: State  # (N, ·): the state at each start
    image: torch.Tensor
    hand_scale: np.ndarray
    rows: list[dict]
    fps: float = 30.0
    render_size: tuple[int, int] = (64, 64)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def state(self, idx: Sequence[int] | torch.Tensor) -> State:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return self.filtered.map(lambda t: t[idx])

    def ref(self, model: WorldModel, idx: Sequence[int] | torch.Tensor) -> Ref:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return model.reference(self.image[idx], self.state(idx).feat())


def _episode_columns(store: Any, ep: int) -> dict[str, np.ndarray]:
    """One episode's columns, as arrays (its own rows also where a file holds several episodes)."""
    from egoworld.dataset.layout import OBJECTS_KEY

    t = store.read_data([ep], ["action", "action_valid", "observation.state"]
                        + (["next.success"] if store.has_labels else []) + ([OBJECTS_KEY] if store.has_objects else []))[ep]
    n = t.num_rows
    out = {"action": np.asarray(t.column("action").combine_chunks().flatten(), dtype=np.float32).reshape(n, -1),
           "action_valid": t.column("action_valid").to_numpy(zero_copy_only=False).astype(bool),
           "state": np.asarray(t.column("observation.state").combine_chunks().flatten(), dtype=np.float32).reshape(n, -1)}
    out["success"] = (t.column("next.success").to_numpy(zero_copy_only=False).astype(bool) if store.has_labels
                      else np.zeros(n, bool))
    # the object tracker's report (NaN: none — a model with tracked points then predicts them)
    out["objects"] = (np.asarray(t.column(OBJECTS_KEY).combine_chunks().flatten(), dtype=np.float32).reshape(n, -1)
                      if store.has_objects else np.full((n, 6), np.nan, np.float32))
    return out


def _task_frame(session_path: str | None, task: str) -> int | None:
    """The frame where the scripted person began the task (sim sessions' truth; evaluation only)."""
    import json

    if not session_path:
        return None
    p = Path(session_path) / "truth" / "task.json"
    if not p.exists():
        return None
    for seg in json.loads(p.read_text()).get("segments", []):
        if seg.get("name") == f"task_{task}":
            return int(seg["frame"])
    return None


def select_episodes(data: str | Path, task: str | None = None, split: str = "train") -> tuple[Any, list[dict]]:
    """(store, rows of meta/episodes) of ``split`` with ``task_id == task`` (any task when None)."""
    from egoworld.dataset.splits import Split, select
    from egoworld.dataset.store import open_store

    store = open_store(data)
    rows = store.episode_rows()
    chosen = select(rows, Split.from_json(split, store.splits or {}))
    picked = [rows[i] for i in chosen if task is None or rows[i].get("task_id") == task]
    if not picked:
        tasks = sorted({r.get("task_id") for r in rows})
        raise ValueError(f"{store.root}: no {split} episode of task {task!r} (tasks here: {', '.join(map(str, tasks))})")
    return store, picked


class WindowReader:
    """Frames (T, 3, S, S) uint8 and actions of any window of a store's episodes (one open video per episode)."""

    def __init__(self, store: Any, size: int) -> None:
        from egoworld.dataset.loader import VideoReader

        self.store, self.size = store, int(size)
        self._VideoReader = VideoReader
        self._readers: dict[int, Any] = {}
        self._frames: dict[int, dict[int, np.ndarray]] = {}
        self.columns: dict[int, dict[str, np.ndarray]] = {}

    def episode(self, ep: int) -> dict[str, np.ndarray]:
        if ep not in self.columns:
            self.columns[ep] = _episode_columns(self.store, ep)
        return self.columns[ep]

    def frames(self, ep: int, start: int, stop: int) -> np.ndarray:
        if ep not in self._readers:
            self._readers[ep] = self._VideoReader(self.store.video_file(ep), self.store.fps, self.size,
                                                  start_s=self.store.video_start(ep))
            self._frames[ep] = {}
        cache = self._frames[ep]
        if any(i not in cache for i in range(start, stop)):
            self._readers[ep].read(start, stop, cache)
        return np.stack([cache[i] for i in range(start, stop)]).transpose(0, 3, 1, 2)

    def close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers.clear()
        self._frames.clear()


@torch.no_grad()
def filter_windows(model: WorldModel, images: torch.Tensor, actions: torch.Tensor, valid: torch.Tensor,
                   states: torch.Tensor | None = None, batch: int = 32, objects: torch.Tensor | None = None) -> State:
    """Posterior states (N, T, ·) of windows (N, T, 3, S, S) [and body states (N, T, 21), tracked objects
    (N, T, 6)] — latent modes: a filter, not a dream."""
    parts = []
    for i in range(0, len(images), batch):
        posts, _ = model.observe(images[i:i + batch], actions[i:i + batch], valid[i:i + batch], sample=False,
                                 state=None if states is None else states[i:i + batch],
                                 objects=None if objects is None else objects[i:i + batch])
        parts.append(posts)
    return cat_states(parts)


def load_starts(model: WorldModel, data: str | Path, task: str | None = None, n: int = 8, context: int = 8,
                horizon: int = 0, split: str = "train", where: str = "task", seed: int = 0) -> Starts:
    """``n`` starting points from ``split`` episodes of ``task``, filtered over ``context`` frames each.

    ``where="task"``: the first start of each episode is the frame where the recorded person began the
    task (sim truth, when the session is on disk), later ones jittered around it; ``"random"``: any
    frame. Every start leaves ``horizon`` recorded frames after it (when the episode is long enough).
    """
    if where not in ("task", "random"):
        raise ValueError(f"where must be 'task' or 'random', got {where!r}")
    store, rows = select_episodes(data, task, split)
    paths = {s["session_id"]: s.get("path") for s in store.sessions}
    rng = np.random.default_rng([seed, 17])
    reader = WindowReader(store, model.cfg.image_size)
    picks: list[dict] = []
    order = list(rng.permutation(len(rows)))
    k = 0
    while len(picks) < n:
        row = rows[order[k % len(rows)]]
        visit = k // len(rows)
        k += 1
        length = int(row["length"])
        lo, hi = context - 1, max(context - 1, length - 1 - horizon)
        if length < context:
            if k > 4 * n * len(rows):
                raise ValueError(f"{store.root}: no {task} episode has the {context} context frames a start needs")
            continue
        path = paths.get(row["session_id"])
        path = path if path and Path(path).is_dir() else None
        base = _task_frame(path, str(row.get("task_id"))) if where == "task" else None
        if base is None:
            frame = int(rng.integers(lo, hi + 1))
        else:
            frame = int(np.clip(base + (0 if visit == 0 else rng.integers(-30, 31)), lo, hi))
        picks.append({"episode_index": int(row["episode_index"]), "frame": frame, "session_id": row["session_id"],
                      "session_path": path, "task_id": row.get("task_id"), "place": row.get("place"),
                      "person": row.get("person"), "length": length})
    images, actions, valid, states, objects, scales = [], [], [], [], [], []
    for p in picks:
        ep, f = p["episode_index"], p["frame"]
        cols = reader.episode(ep)
        images.append(reader.frames(ep, f - context + 1, f + 1))
        actions.append(cols["action"][f - context + 1: f + 1])
        states.append(cols["state"][f - context + 1: f + 1])
        objects.append(cols["objects"][f - context + 1: f + 1])
        valid.append(cols["action_valid"][f - context + 1: f + 1])
        scales.append(estimate_hand_scale(cols["action"], cols["action_valid"]))
        p["success_at_start"] = bool(cols["success"][max(f - 1, 0)])
    reader.close()
    img = torch.from_numpy(np.stack(images))
    posts = filter_windows(model, img, torch.from_numpy(np.stack(actions)), torch.from_numpy(np.stack(valid)),
                           torch.from_numpy(np.stack(states)), objects=torch.from_numpy(np.stack(objects)))
    feats = store.info["features"][store.video_key]["shape"]
    return Starts(posts.last().map(torch.Tensor.contiguous),
                  img[:, -1].contiguous(), np.stack(scales), picks, store.fps, (int(feats[0]), int(feats[1])),
                  {"data": str(store.root), "split": split, "task": task, "context": context, "where": where})


# ---------------------------------------------------------------- observations of a model state


@torch.no_grad()
def observe_state(model: WorldModel, state: State, ref: Ref | None, keys: Sequence[str],
                  rot: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """The observation dict of a single model state (batch of one); ``rot`` (1, 1, 3, 3): the head's
    rotation since the reference frame, chained from the actions taken (``WorldModel.head_rotation``)."""
    feat = state.feat()
    obs: dict[str, np.ndarray] = {}
    if "image" in keys:
        img = model.decode(feat[:, None], ref, rot)[:, 0].clamp(0, 1)[0]
        obs["image"] = (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if "state" in keys:
        obs["state"] = symexp(model.state_head(feat))[0].clamp(-STATE_BOUND, STATE_BOUND).numpy().astype(np.float32)
    if "latent" in keys:
        obs["latent"] = feat[0].clamp(-1, 1).numpy().astype(np.float32)
    return obs


def _raw_action(control: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(actions_from_controls(control, scale).astype(np.float32))[None]


def _to_action(model: WorldModel, control: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    return model.norm_action(_raw_action(control, scale))


def _chain_rotation(model: WorldModel, rot: torch.Tensor | None, raw: torch.Tensor) -> torch.Tensor | None:
    """The head rotation since the reference after one more raw action (1, A)."""
    step = model.head_rotation(raw[:, None])
    if step is None:
        return None
    return step if rot is None else rot @ step


# ---------------------------------------------------------------- the dream


class _HoldsModelState:
    """What a planner acting inside an env reads from it (``LatentCost``): the model state and the hand scale."""

    _state: State | None
    _scale: np.ndarray

    @property
    def model_state(self) -> State:
        """The model's current state (batch 1): where a planner acting in this env imagines from."""
        assert self._state is not None, "call reset() first"
        return self._state

    @property
    def hand_scale(self) -> np.ndarray:
        """Each hand's scale (2,) of the episode's person: how a planned grip becomes finger keypoints."""
        return self._scale


def check_progress(model: WorldModel, progress: str) -> str:
    """``progress`` if the model can read it: "head" (the reward head), "track" (the tracked points)."""
    if progress not in PROGRESS:
        raise ValueError(f"unknown progress {progress!r}; known: {', '.join(PROGRESS)}")
    if progress == "track" and model.cfg.track_points < 2:
        raise ValueError("progress 'track' needs a model trained with tracked objects (--set track_points=2)")
    return progress


def dream_progress(model: WorldModel, feat: torch.Tensor, start_feat: torch.Tensor, progress: str = "head") -> torch.Tensor:
    """The task progress (…) an imagined state's features (…, F) stand for: the reward head's, or read from the
    tracked points against the episode's start (``plan.track_progress``). The dream's reward is its change."""
    if progress == "track":
        from egoworld.imagine.plan import track_progress

        return track_progress(model, feat, start_feat)
    return model.reward(feat)


def dream_continue(model: WorldModel, feat: torch.Tensor, progress: str = "head", task: str | None = None) -> torch.Tensor:
    """P(the episode goes on) at imagined states (…): the continuation head's, or, when progress is read from
    the tracked points, 0 once the imagined object is at its goal (``plan.track_done``) and 1 before. Why: the
    end of a dream then rests on the same points as its reward; the continuation head, trained on recorded
    episodes that end at success, ended 44 % of push dreams under a still hand."""
    if progress == "track":
        from egoworld.imagine.plan import track_done

        if not task:
            raise ValueError("a dream that reads progress from the tracked points needs its task (where the object must go)")
        return 1.0 - track_done(model, feat, task)
    return model.cont(feat)


class DreamEnv(_HoldsModelState, gym.Env):
    """The world model as an environment: ``step`` advances the prior from a real recorded start.

    ``sample``: draw latents from the prior (a dream, seeded by ``reset``'s seed) rather than take
    their modes. ``done_threshold``: terminate when P(continue) falls below it. ``progress``: what the reward
    is the change of ("head": the reward head; "track": the tracked points, ``dream_progress``), and with it
    what ends the dream (``dream_continue``: with "track", the object at its goal for the start's task).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, model: WorldModel, starts: Starts, max_steps: int = 150, obs_keys: Sequence[str] = OBS_KEYS,
                 sample: bool = True, done_threshold: float = 0.5, render_mode: str | None = "rgb_array",
                 progress: str = "head") -> None:
        if len(starts) == 0:
            raise ValueError("DreamEnv needs at least one start (load_starts)")
        self.model = model.eval()
        self.starts, self.max_steps, self.obs_keys = starts, int(max_steps), tuple(obs_keys)
        self.sample, self.done_threshold, self.render_mode = bool(sample), float(done_threshold), render_mode
        self.progress = check_progress(model, progress)
        self._start_feat: torch.Tensor | None = None
        self.action_space = control_space()
        self.observation_space = observation_space(model.cfg.image_size, model.cfg.feat_size, self.obs_keys)
        self.metadata = dict(self.metadata, render_fps=int(round(starts.fps)))
        self._state: State | None = None
        self._ref: Ref | None = None
        self._rot: torch.Tensor | None = None
        self._gen = torch.Generator()
        self._steps = 0
        self._progress = 0.0
        self._task: str | None = None
        self.start_index = -1

    @torch.no_grad()
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = options or {}
        i = int(options["start"]) if "start" in options else int(self.np_random.integers(len(self.starts)))
        if not 0 <= i < len(self.starts):
            raise ValueError(f"start {i} out of range (0…{len(self.starts) - 1})")
        self._gen.manual_seed(int(self.np_random.integers(2**31)))
        self.start_index = i
        self._state = self.starts.state([i])
        self._ref = self.starts.ref(self.model, [i])
        self._rot = None  # no move since the reference yet
        self._scale = self.starts.hand_scale[i]
        self._steps = 0
        self._start_feat = self._state.feat()
        self._progress = float(dream_progress(self.model, self._start_feat, self._start_feat, self.progress)[0])
        self._task = self.starts.rows[i].get("task_id")
        self._cont = float(dream_continue(self.model, self._start_feat, self.progress, self._task)[0])
        return observe_state(self.model, self._state, self._ref, self.obs_keys), self._info()

    @torch.no_grad()
    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        assert self._state is not None, "call reset() first"
        raw = _raw_action(np.asarray(action, dtype=np.float64), self._scale)
        a = self.model.norm_action(raw)
        self._rot = _chain_rotation(self.model, self._rot, raw)
        noise = Noise(self._gen) if self.sample else None
        self._state = self.model.rssm.img_step(self._state, a, noise, sample=self.sample)
        feat = self._state.feat()
        progress = float(dream_progress(self.model, feat, self._start_feat, self.progress)[0])
        reward = progress - self._progress
        self._progress = progress
        self._cont = float(dream_continue(self.model, feat, self.progress, self._task)[0])
        self._steps += 1
        terminated = self._cont < self.done_threshold
        truncated = self._steps >= self.max_steps
        return observe_state(self.model, self._state, self._ref, self.obs_keys, self._rot), reward, terminated, truncated, self._info()

    def render(self) -> np.ndarray:
        assert self._state is not None, "call reset() first"
        return observe_state(self.model, self._state, self._ref, ("image",), self._rot)["image"]

    def _info(self) -> dict:
        return {"progress": self._progress, "cont": self._cont, "success": self._cont < self.done_threshold,
                "steps": self._steps, "start": self.start_index}


# ---------------------------------------------------------------- the simulator, seen through the model


class FilteredSimEnv(_HoldsModelState, gym.Env):
    """The simulator with the model's filter on its frames: same action space and observation keys as ``DreamEnv``.

    With ``starts``, ``reset`` restores a start's recorded simulator state (its session's truth) and
    the filter begins from the start's filtered state, exactly where ``DreamEnv`` begins; without,
    each reset draws a fresh layout of ``task`` and the filter begins from the first frame.
    ``reward``/``terminated`` are the simulator's (change of true progress; task success).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, model: WorldModel, starts: Starts | None = None, task: str = "push", max_steps: int = 150,
                 obs_keys: Sequence[str] = OBS_KEYS, render_size: tuple[int, int] | None = None,
                 render_mode: str | None = "rgb_array") -> None:
        from egoworld.capture.sim.env import SimEnv

        if starts is not None:
            if not any(r.get("session_path") for r in starts.rows):
                raise ValueError("FilteredSimEnv: no start has its session on disk (the simulator is restored from "
                                 "a sim session's truth/); pass starts from a simulated data set")
            task = str(starts.rows[0].get("task_id") or task)
        h, w = render_size or (starts.render_size if starts is not None else (model.cfg.image_size,) * 2)
        self.model = model.eval()
        self.starts, self.obs_keys, self.render_mode = starts, tuple(obs_keys), render_mode
        self.sim = SimEnv(task, width=w, height=h, max_steps=max_steps, render_mode=render_mode)
        self.max_steps = int(max_steps)
        self.action_space = control_space()
        self.observation_space = observation_space(model.cfg.image_size, model.cfg.feat_size, self.obs_keys)
        self._state: State | None = None
        self.start_index = -1

    def _obs(self, sim_obs: dict) -> dict:
        out = {}
        if "image" in self.obs_keys:
            out["image"] = to_model_frame(sim_obs["image"], self.model.cfg.image_size)
        if "state" in self.obs_keys:
            out["state"] = sim_obs["state"].astype(np.float32)
        if "latent" in self.obs_keys:
            out["latent"] = self._state.feat()[0].clamp(-1, 1).numpy().astype(np.float32)
        return out

    def _filter(self, sim_obs: dict, action: torch.Tensor | None) -> State:
        """The model's filter step on a simulator observation (frame + body state), after ``action`` (None: the first)."""
        m = self.model
        frame = to_model_frame(sim_obs["image"], m.cfg.image_size)
        img = torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1)))[None, None]
        state = torch.from_numpy(np.asarray(sim_obs["state"], dtype=np.float32))[None, None] if "state" in sim_obs else None
        objects = torch.from_numpy(np.asarray(sim_obs["objects"], dtype=np.float32))[None, None] if "objects" in sim_obs else None
        body, known = m.sense(state, (1, 1), objects=objects)
        post, _, _ = m.rssm.obs_step(self._state if action is not None else None, action, m.embed(img)[:, 0],
                                     None if body is None else body[:, 0], None if known is None else known[:, 0],
                                     sample=False)
        return post

    @torch.no_grad()
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = dict(options or {})
        sim_seed = int(self.np_random.integers(2**31))
        if self.starts is not None:
            usable = [k for k, r in enumerate(self.starts.rows) if r.get("session_path")]
            i = int(options.pop("start")) if "start" in options else int(usable[self.np_random.integers(len(usable))])
            row = self.starts.rows[i]
            if not row.get("session_path"):
                raise ValueError(f"start {i} ({row['session_id']}): its session is not on disk; the simulator cannot restore it")
            sim_obs, info = self.sim.reset(seed=sim_seed, options={"session": row["session_path"], "frame": row["frame"]})
            self._state = self.starts.state([i])
            self._scale = self.starts.hand_scale[i]
            self.start_index = i
        else:
            from egoworld.capture.sim.catalog import person as person_spec

            sim_obs, info = self.sim.reset(seed=sim_seed, options=options or None)
            self._state = self._filter(sim_obs, None)
            self._scale = np.full(2, person_spec(int(options.get("person", self.sim.person))).hand_scale)
            self.start_index = -1
        return self._obs(sim_obs), dict(info, start=self.start_index)

    @torch.no_grad()
    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        assert self._state is not None, "call reset() first"
        control = clip_control(np.asarray(action, dtype=np.float64))
        sim_obs, reward, terminated, truncated, info = self.sim.step(control.astype(np.float32))
        self._state = self._filter(sim_obs, _to_action(self.model, control, self._scale))
        return self._obs(sim_obs), reward, terminated, truncated, dict(info, start=self.start_index)

    def render(self) -> np.ndarray:
        return self.sim.render()

    def close(self) -> None:
        self.sim.close()
