"""A tiny procedurally rendered world where the action moves a square: a permanent test bed.

Why it exists: it answers "does the model use the action?" without a simulator or a data set.
The square's velocity is the first two action dimensions, drawn fresh every frame, so nothing in
the past frames predicts the next move: an action-blind model *must* be worse, and a
counterfactual (two action sequences from one state) has a known, exact answer (``render``).
It has the loader's interface (``__len__``, ``__getitem__`` → the same keys, ``action_stats``,
``episodes``), so the training loop cannot tell it from ``ClipDataset``.
"""
from __future__ import annotations

import numpy as np
import torch

from egoworld.actions import ACTION_DIM
from egoworld.state import HEAD_Q, STATE_DIM

SPEED = 0.08  # fraction of the image per frame at |action| = 1
SQUARE = 0.22  # side, fraction of the image


def step_positions(pos: np.ndarray, actions: np.ndarray, speed: float = SPEED, square: float = SQUARE) -> np.ndarray:
    """Positions after each action: (2,) and (H, ≥2) → (H, 2); the square stays inside the frame."""
    out = np.empty((len(actions), 2))
    p = np.asarray(pos, dtype=np.float64).copy()
    for k, a in enumerate(actions):
        p = np.clip(p + speed * np.asarray(a[:2], dtype=np.float64), 0.0, 1.0 - square)
        out[k] = p
    return out


def render(pos: np.ndarray, size: int, place: int, square: float = SQUARE) -> np.ndarray:
    """Frames (N, 3, size, size) uint8 for square corners ``pos`` (N, 2) in place ``place`` (background)."""
    rng = np.random.default_rng(1000 + place)
    bg = rng.integers(30, 120, size=3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = (bg[:, None, None] * (0.7 + 0.3 * (xx + yy)[None] / 2)).astype(np.float64)
    colour = np.array([230.0, 200.0, 40.0])
    frames = np.empty((len(pos), 3, size, size), dtype=np.uint8)
    for i, (x, y) in enumerate(pos):
        inside = (xx >= x) & (xx < x + square) & (yy >= y) & (yy < y + square)
        frames[i] = np.where(inside[None], colour[:, None, None], base).astype(np.uint8)
    return frames


class SyntheticClips:
    """``episodes`` × ``length`` frames of the square world, cut into clips of ``T`` frames."""

    def __init__(self, episodes: int = 8, length: int = 48, T: int = 16, size: int = 32, seed: int = 0,
                 places: int = 4, stride: int | None = None, split: str = "all", square: float = SQUARE,
                 speed: float = SPEED, shard: tuple[int, int] | None = None):
        """``split``: "train", "val" (every 5th episode outside the held-out place), "heldout" (the last
        place, never trained on) or "all"; the episodes are the same whatever the split. ``shard`` =
        (rank, world): ``owner_of(i)`` says which rank trains on clip i, as ``ClipDataset`` does."""
        rng = np.random.default_rng(seed)
        self.places, self.square, self.speed = places, square, speed
        self.T, self.size = T, size
        self.episodes: list[dict] = []
        self._data: list[dict[str, torch.Tensor]] = []
        for e in range(episodes):
            place = e % places
            start = rng.uniform(0.0, 1.0 - square, size=2)
            actions = np.zeros((length, ACTION_DIM), dtype=np.float32)
            actions[:, :2] = rng.uniform(-1.0, 1.0, size=(length, 2))
            actions[:, 2:] = 0.1 * rng.standard_normal((length, ACTION_DIM - 2))  # irrelevant dims: noise
            pos = np.concatenate([start[None], step_positions(start, actions[:-1], speed, square)])
            state = np.zeros((length, STATE_DIM), dtype=np.float32)
            state[:, :2] = pos  # the square's corner stands in for the head's x, y
            state[:, HEAD_Q.start] = 1.0  # qw: an upright head
            target = np.array([0.5, 0.5])
            reward = (1.0 - np.linalg.norm(pos - target, axis=1)).astype(np.float32)
            done = np.zeros(length, dtype=bool)
            done[-1] = True
            valid = np.ones(length, dtype=bool)
            valid[-1] = False  # no motion after the last frame
            self._data.append({"image": torch.from_numpy(render(pos, size, place, square)), "action": torch.from_numpy(actions),
                               "action_valid": torch.from_numpy(valid), "state": torch.from_numpy(state),
                               "reward": torch.from_numpy(reward), "done": torch.from_numpy(done),
                               "positions": torch.from_numpy(pos)})
            self.episodes.append({"episode_index": e, "session_id": f"square-{seed}-{e:03d}", "place": f"place-{place}",
                                  "person": "synthetic", "task": "square", "consent": {"scopes": ["research", "commercial"]},
                                  "content_hash": f"synthetic:{seed}:{e}", "length": length})
        keep = [e for e in range(episodes) if _split_of(e, places) == split or split == "all"]
        self.episodes = [self.episodes[e] for e in keep]
        step = stride or max(1, T // 2)
        self.index = [(e, s) for e in keep for s in range(0, length - T + 1, step)]
        from egoworld.dataset.loader import assign_shards

        rank, world = shard or (0, 1)
        self.rank = rank
        self.owner = assign_shards({e: sum(1 for x, _ in self.index if x == e) for e in keep}, world)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, s = self.index[i]
        d = self._data[e]
        item = {k: v[s:s + self.T] for k, v in d.items() if k != "positions"}
        item["has_reward"] = torch.tensor(True)
        item["episode_index"] = torch.full((self.T,), e, dtype=torch.int64)
        item["frame_index"] = torch.arange(s, s + self.T, dtype=torch.int64)
        return item

    def owner_of(self, i: int) -> int:
        return self.owner[self.index[i][0]]

    def action_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        acts = torch.cat([self._data[m["episode_index"]]["action"][:-1] for m in self.episodes])
        return acts.mean(0), acts.std(0)

    def truth(self, i: int) -> torch.Tensor:
        """True square positions (T, 2) of clip ``i`` — what a state probe should recover."""
        e, s = self.index[i]
        return self._data[e]["positions"][s:s + self.T].float()

    def start_position(self, i: int, k: int) -> np.ndarray:
        """The square's position at frame k of clip i (the state a counterfactual starts from)."""
        e, s = self.index[i]
        return self._data[e]["positions"][s + k].numpy()

    def place_of(self, i: int) -> int:
        return self.index[i][0] % self.places


def _split_of(e: int, places: int) -> str:
    if e % places == places - 1:
        return "heldout"
    return "val" if e % 5 == 4 else "train"
