"""Clips for training: windows of T frames (+ actions, state, labels) as torch tensors.

``ClipDataset(root, T, size, split, seed)`` tiles every episode of the split with windows of
``T`` frames, ``stride`` apart (default T), starting at a per-episode phase drawn from ``seed``
— so ``len(ds)`` and ``ds[i]`` are fixed for a seed, and ``set_epoch(e)`` re-draws the phases
without changing the length. Video is decoded with PyAV: seek to the keyframe at or before the
window (the store has a keyframe every ``gop`` frames), decode only up to the window's end, scale
in the decoder (swscale, area filter), and keep the downsampled frames in an in-memory cache
(bounded by ``cache_mb``) so that later windows over the same frames decode nothing.

Item fields (torch): ``image`` uint8 (T, 3, size, size); ``action`` float32 (T, 138), raw;
``action_valid`` bool (T,); ``state`` float32 (T, 21) = head p q, left wrist p q, right wrist p q;
``reward`` float32 (T,), ``done`` / ``success`` bool (T,) (zeros when ``has_reward`` is False);
``has_reward`` bool; ``episode_index`` int64; ``frame_index`` int64 (T,).
"""
from __future__ import annotations

from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset

from egoworld.actions import ACTION_DIM
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError
from egoworld.dataset.splits import KINDS, Split, select
from egoworld.dataset.store import Store, open_store

__all__ = ["ClipDataset", "Split", "VideoReader", "assign_shards", "make_loader"]


def assign_shards(clips: dict[int, int], world: int) -> dict[int, int]:
    """Episode → the rank that reads it: whole episodes, balanced by clip count (largest first, each to
    the least-loaded rank, ties to the lower rank) — a pure function of the episodes and ``world``."""
    load = [0] * max(1, int(world))
    owner = {}
    for ep, n in sorted(clips.items(), key=lambda kv: (-kv[1], kv[0])):
        r = min(range(len(load)), key=lambda k: (load[k], k))
        owner[ep] = r
        load[r] += n
    return owner


def window_count(length: int, T: int, stride: int) -> int:
    """Windows per episode (the same every epoch; ``ClipDataset.set_epoch`` only moves their phase)."""
    return max(1, (length - T) // stride)


class VideoReader:
    """Random access to one episode video: seek to the keyframe before, decode to the end of the window."""

    def __init__(self, path: Path, fps: float, size: int) -> None:
        self.path, self.fps, self.size = Path(path), float(fps), int(size)
        if not self.path.exists():
            raise DatasetError(self.path, "video file is missing")
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise DatasetError(self.path, f"not a readable video ({e})") from e
        self.stream = self.container.streams.video[0]
        self.stream.thread_count = 1
        self.tb = Fraction(self.stream.time_base)
        self.decoded = 0  # frames decoded so far (for the benchmark)

    def _index(self, pts: int) -> int:
        return int(round(float(pts * self.tb) * self.fps))

    def read(self, start: int, stop: int, out: dict[int, np.ndarray]) -> None:
        """Decode frames [start, stop) into ``out`` (frame index → (size, size, 3) uint8), plus any
        frames decoded on the way from the keyframe (they are free to keep)."""
        target = int(round(start / self.fps / self.tb))
        try:
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            first = True
            for frame in self.container.decode(self.stream):
                i = self._index(frame.pts)
                if first and i > start:  # the seek overshot (no keyframe index): restart from the top
                    self.container.seek(0, stream=self.stream)
                    first = False
                    continue
                first = False
                self.decoded += 1
                if i not in out:
                    out[i] = frame.reformat(width=self.size, height=self.size, format="rgb24",
                                            interpolation="AREA").to_ndarray()
                if i >= stop - 1:
                    break
        except av.error.FFmpegError as e:
            raise DatasetError(self.path, f"video stream is corrupt ({e})") from e
        missing = [i for i in range(start, stop) if i not in out]
        if missing:
            raise DatasetError(self.path, f"frames {missing[:5]}… are missing from the video (store damaged? rebuild it)")

    def close(self) -> None:
        self.container.close()


class _FrameCache:
    """Downsampled frames per episode, least-recently-used episodes evicted past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.eps: OrderedDict[int, dict[int, np.ndarray]] = OrderedDict()
        self.bytes = 0

    def get(self, ep: int) -> dict[int, np.ndarray]:
        d = self.eps.get(ep)
        if d is None:
            d = self.eps[ep] = {}
        self.eps.move_to_end(ep)
        return d

    def account(self) -> None:
        self.bytes = sum(sum(f.nbytes for f in d.values()) for d in self.eps.values())
        while self.bytes > self.max_bytes and len(self.eps) > 1:
            _, d = self.eps.popitem(last=False)
            self.bytes -= sum(f.nbytes for f in d.values())


def _split(store: Store, split: Split | str) -> Split:
    if isinstance(split, Split):
        return split
    if split not in KINDS:
        raise ValueError(f"split must be a Split or one of {KINDS}, got {split!r}")
    return Split.from_json(split, store.splits or {})


def _shift_motion(a: dict[str, Any], k: int) -> dict[str, Any]:
    """Pair frame i with motion row i + k (edge rows repeated, their actions marked invalid)."""
    n = a["length"]
    src = np.clip(np.arange(n) + k, 0, n - 1)
    out = dict(a)
    for name in ("action", "state", "action_valid"):
        out[name] = a[name][src].copy()
    out["action_valid"][(np.arange(n) + k < 0) | (np.arange(n) + k > n - 1)] = False
    return out


class ClipDataset(Dataset):
    """Windows of T frames from the episodes of one split; see the module docstring for the fields."""

    def __init__(self, root: str | Path, T: int, size: int = 64, split: Split | str = "train", seed: int = 0,
                 cache: bool = True, stride: int | None = None, cache_mb: int = 1024,
                 motion_offset: int = 0, places: Sequence[str] | None = None,
                 leave_out: dict[str, str] | None = None, shard: tuple[int, int] | None = None) -> None:
        """``motion_offset`` k pairs frame i with the motion (action, state) of frame i + k: an
        uncorrected clock offset of k frames, for the sync ablation. ``places`` keeps only
        episodes recorded in those places (the single-place ablation). ``leave_out`` maps session
        ids to the reason they must not be used (e.g. revoked consent); ``self.left_out`` lists
        the ones of this split that were dropped. ``shard`` = (rank, world): the clip index stays the
        whole split's (every rank agrees on it), but only the episodes ``assign_shards`` gives this
        rank are read and decoded; ``owner_of(i)`` says which rank reads clip i."""
        if T < 1:
            raise ValueError(f"T must be ≥ 1, got {T}")
        self.store = open_store(root)
        self.root = self.store.root
        self.T, self.size, self.seed = int(T), int(size), int(seed)
        self.stride = int(stride) if stride else self.T
        if self.stride < 1:
            raise ValueError(f"stride must be ≥ 1, got {stride}")
        self.split = _split(self.store, split)
        rows = self.store.episode_rows()
        chosen = select(rows, self.split)
        if places:
            unknown = set(places) - {r["place"] for r in rows}
            if unknown:
                raise ValueError(f"{self.root}: no episodes from place(s) {sorted(unknown)}")
            chosen = [i for i in chosen if rows[i]["place"] in set(places)]
        self.left_out = {rows[i]["session_id"]: (leave_out or {})[rows[i]["session_id"]] for i in chosen
                         if rows[i]["session_id"] in (leave_out or {})}
        chosen = [i for i in chosen if rows[i]["session_id"] not in self.left_out]
        self.motion_offset = int(motion_offset)
        self.episode_indices = [int(rows[i]["episode_index"]) for i in chosen if rows[i]["length"] >= self.T]
        self.episodes: pa.Table = self.store.episodes.take(pa.array(
            [i for i in chosen if rows[i]["length"] >= self.T], type=pa.int64()))
        self.has_reward_store = self.store.has_labels
        self._lengths = {ep: int(rows[ep]["length"]) for ep in self.episode_indices}
        rank, world = shard or (0, 1)
        self.rank = int(rank)
        self.owner = assign_shards({ep: window_count(n, self.T, self.stride) for ep, n in self._lengths.items()}, world)
        self._arrays = {ep: self._load(ep, rows[ep]) for ep in self.episode_indices if self.owner[ep] == self.rank}
        self.cache_enabled = bool(cache)
        self._cache = _FrameCache(int(cache_mb) * 2**20)
        self._readers: OrderedDict[int, VideoReader] = OrderedDict()
        self.frames_decoded = 0
        self.set_epoch(0)

    # -- metadata ---------------------------------------------------------------------------
    def _load(self, ep: int, row: dict) -> dict[str, Any]:
        path = self.store.data_file(ep)
        cols = ["frame_index", "action", "action_valid", "observation.state"]
        if self.has_reward_store:
            cols += list(L.LABEL_FEATURES)
        if self.store.has_objects:
            cols.append(L.OBJECTS_KEY)
        try:
            t = pq.read_table(path, columns=cols)
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(path, f"not a readable parquet file (truncated or corrupt?): {e}") from e
        n = t.num_rows
        if n != row["length"]:
            raise DatasetError(path, f"has {n} rows, meta/episodes says {row['length']}")

        def mat(name: str, w: int) -> np.ndarray:
            return np.asarray(t.column(name).combine_chunks().flatten(), dtype=np.float32).reshape(n, w)

        out = {"action": mat("action", ACTION_DIM), "state": mat("observation.state", L.STATE_DIM),
               "action_valid": t.column("action_valid").to_numpy(zero_copy_only=False).astype(bool),
               "has_reward": bool(row.get("has_reward", False)) and self.has_reward_store}
        if out["has_reward"]:
            out["reward"] = t.column("next.reward").to_numpy(zero_copy_only=False).astype(np.float32)
            out["done"] = t.column("next.done").to_numpy(zero_copy_only=False).astype(bool)
            out["success"] = t.column("next.success").to_numpy(zero_copy_only=False).astype(bool)
        else:
            out["reward"] = np.zeros(n, np.float32)
            out["done"] = np.zeros(n, bool)
            out["success"] = np.zeros(n, bool)
        if self.store.has_objects:
            out["objects"] = mat(L.OBJECTS_KEY, len(L.OBJECT_NAMES))
        out["length"] = n
        if self.motion_offset:
            out = _shift_motion(out, self.motion_offset)
        return out

    @property
    def stats(self) -> dict[str, dict[str, torch.Tensor]]:
        """meta/stats.json as tensors, for ``action`` and ``observation.state`` (mean/std/min/max)."""
        out = {}
        for name, key in (("action", "action"), ("state", "observation.state")):
            s = self.store.stats.get(key, {})
            out[name] = {k: torch.tensor(np.asarray(s[k], dtype=np.float32)) for k in ("mean", "std", "min", "max") if k in s}
        return out

    def action_stats(self) -> dict[str, torch.Tensor]:
        """Mean and std (floored at 1e-6) per action dim, over valid frames of the whole store."""
        s = self.stats["action"]
        return {"mean": s["mean"], "std": torch.clamp(s["std"], min=1e-6)}

    # -- windows ----------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Re-draw each episode's window phase (same number of windows, so len() is unchanged)."""
        rng = np.random.default_rng([self.seed, int(epoch), 7])
        index = []
        for ep in self.episode_indices:
            n = self._lengths[ep]
            # one window fewer than would tile the episode, so every epoch's phase can move by up to
            # a whole stride (windows stay distinct across seeds even when T divides the length)
            count = window_count(n, self.T, self.stride)
            slack = (n - self.T) - (count - 1) * self.stride
            phase = int(rng.integers(0, slack + 1))
            index += [(ep, phase + k * self.stride) for k in range(count)]
        self._index = np.asarray(index, dtype=np.int64).reshape(-1, 2)
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._index)

    def windows(self) -> np.ndarray:
        """(len, 2) array of (episode_index, start frame)."""
        return self._index.copy()

    def owner_of(self, i: int) -> int:
        """The rank that reads clip ``i`` (0 without a shard)."""
        return self.owner[int(self._index[i][0])]

    # -- frames -----------------------------------------------------------------------------
    def _reader(self, ep: int) -> VideoReader:
        r = self._readers.get(ep)
        if r is None:
            r = self._readers[ep] = VideoReader(self.store.video_file(ep), self.store.fps, self.size)
            while len(self._readers) > 8:
                _, old = self._readers.popitem(last=False)
                self.frames_decoded += old.decoded
                old.close()
        self._readers.move_to_end(ep)
        return r

    def frames(self, ep: int, start: int) -> np.ndarray:
        """(T, size, size, 3) uint8 frames [start, start+T) of episode ``ep``."""
        stop = start + self.T
        store = self._cache.get(ep) if self.cache_enabled else {}
        if any(i not in store for i in range(start, stop)):
            first_missing = next(i for i in range(start, stop) if i not in store)
            self._reader(ep).read(first_missing, stop, store)
            if self.cache_enabled:
                self._cache.account()
        return np.stack([store[i] for i in range(start, stop)])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        ep, start = (int(x) for x in self._index[i])
        a = self._arrays.get(ep)
        if a is None:
            raise IndexError(f"clip {i} is in episode {ep}, which rank {self.owner[ep]} reads, not this one (rank {self.rank})")
        sl = slice(start, start + self.T)
        img = self.frames(ep, start)
        extra = {"objects": torch.from_numpy(a["objects"][sl].copy())} if "objects" in a else {}
        return {**extra,
            "image": torch.from_numpy(np.ascontiguousarray(img.transpose(0, 3, 1, 2))),
            "action": torch.from_numpy(a["action"][sl].copy()),
            "action_valid": torch.from_numpy(a["action_valid"][sl].copy()),
            "state": torch.from_numpy(a["state"][sl].copy()),
            "reward": torch.from_numpy(a["reward"][sl].copy()),
            "done": torch.from_numpy(a["done"][sl].copy()),
            "success": torch.from_numpy(a["success"][sl].copy()),
            "has_reward": torch.tensor(a["has_reward"]),
            "episode_index": torch.tensor(ep, dtype=torch.int64),
            "frame_index": torch.arange(start, start + self.T, dtype=torch.int64),
        }

    def __getstate__(self) -> dict:
        # Open containers and the cache stay in the process that made them (DataLoader workers
        # start with none and fill their own).
        d = dict(self.__dict__)
        d["_readers"] = OrderedDict()
        d["_cache"] = _FrameCache(self._cache.max_bytes)
        return d

    def close(self) -> None:
        for r in self._readers.values():
            self.frames_decoded += r.decoded
            r.close()
        self._readers.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — interpreter shutdown
            pass


def _seed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    np.random.seed((info.seed if info else worker_id) % 2**32)


def make_loader(ds: ClipDataset, batch_size: int, shuffle: bool = True, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose batches stack every field (image (B, T, 3, S, S), action (B, T, 138), …).

    The order is fixed by ``seed`` (a seeded generator), whatever ``num_workers`` is.
    """
    g = torch.Generator()
    g.manual_seed(int(seed))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=num_workers,
                      worker_init_fn=_seed_worker, drop_last=drop_last, persistent_workers=num_workers > 0)
