"""Clips for training: windows of T frames (+ actions, state, labels) as torch tensors.

``ClipDataset(root, T, size, split, seed)`` tiles every episode of the split with windows of
``T`` frames, ``stride`` apart (default T), starting at a per-episode phase drawn from ``seed``
— so ``len(ds)`` and ``ds[i]`` are fixed for a seed, and ``set_epoch(e)`` re-draws the phases
without changing the length. Video is decoded with PyAV: seek to the keyframe at or before the
window's first missing frame (the store has a keyframe every ``gop`` frames), decode through the
end of the group of pictures holding its last one, scale with swscale (area filter), and keep the
frames in an in-memory cache (bounded by ``cache_mb``), so that a shuffled epoch decodes each
group once and later epochs decode nothing. A store's data and video files may each hold several
episodes back to back (LeRobot's ``merge_datasets`` layout): rows are told apart by
``episode_index``, frames by the episode's ``from_timestamp``.

Item fields (torch): ``image`` uint8 (T, 3, size, size); ``action`` float32 (T, 138), raw;
``action_valid`` bool (T,); ``state`` float32 (T, 21) = head p q, left wrist p q, right wrist p q;
``reward`` float32 (T,), ``done`` / ``success`` bool (T,) (zeros when ``has_reward`` is False);
``has_reward`` bool; ``episode_index`` int64; ``frame_index`` int64 (T,).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import torch
from av.video.reformatter import VideoReformatter
from torch.utils.data import DataLoader, Dataset, default_collate

from egoworld.actions import ACTION_DIM
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError
from egoworld.dataset.splits import KINDS, Split, select
from egoworld.dataset.store import Store, open_store

__all__ = ["ClipDataset", "Split", "VideoReader", "assign_shards", "collate", "make_loader"]


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
    """Random access to one episode's frames in a video file: seek to the keyframe before, decode on.

    ``start_s`` is where the episode begins in the file (LeRobot's ``from_timestamp``: a file may
    hold several episodes back to back), so frame i of the episode is the one shown at
    ``start_s + i / fps``; frames of other episodes decoded on the way are dropped.

    Why it is fast: one colour converter (``VideoReformatter``) for the reader's life — building a
    new one per frame, as ``frame.reformat`` does, costs more than decoding the frame — and a
    read that starts where the last one stopped goes on decoding instead of seeking back.
    """

    def __init__(self, path: Path, fps: float, size: int, start_s: float = 0.0, gop: int = 0) -> None:
        """``gop``: the keyframe spacing when known (the store records it), else learnt while decoding."""
        self.path, self.fps, self.size, self.start_s = Path(path), float(fps), int(size), float(start_s)
        if not self.path.exists():
            raise DatasetError(self.path, "video file is missing")
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise DatasetError(self.path, f"not a readable video ({e})") from e
        self.stream = self.container.streams.video[0]
        self.stream.thread_count = 1
        self.tb = Fraction(self.stream.time_base)
        self._tb_s = float(self.tb)  # a Fraction product per frame cost more than the frame's colour conversion
        self.reformatter = VideoReformatter()
        self._frames: Iterator[av.VideoFrame] | None = None  # the decoder, where the last read left it
        self._next = -1  # index of the frame it gives next (-1: just sought)
        self._key: int | None = None  # index of the last keyframe decoded
        self.gop = int(gop)  # keyframe spacing: within it, decoding on is cheaper than a seek
        self.decoded = 0  # frames decoded so far (for the benchmark)

    def _index(self, pts: int) -> int:
        return round((pts * self._tb_s - self.start_s) * self.fps)

    def _scaled(self, frame: av.VideoFrame) -> np.ndarray:
        return self.reformatter.reformat(frame, width=self.size, height=self.size, format="rgb24",
                                         interpolation="AREA", threads=1).to_ndarray()

    def _into(self, frame: av.VideoFrame, dst: np.ndarray) -> None:
        """Scale and convert ``frame`` straight into ``dst`` (3, size, size), channels first."""
        if frame.width == frame.height == self.size:
            # unscaled, swscale's planar RGB is the same pixels as its packed rgb24 (tests check):
            # three plane copies instead of a transpose
            f = self.reformatter.reformat(frame, format="gbrp", interpolation="AREA", threads=1)
            for c, plane in zip((1, 2, 0), f.planes):  # gbrp planes are G, B, R
                dst[c] = np.frombuffer(plane, np.uint8).reshape(self.size, plane.line_size)[:, :self.size]
        else:
            f = self.reformatter.reformat(frame, width=self.size, height=self.size, format="rgb24",
                                          interpolation="AREA", threads=1)
            p = f.planes[0]
            hwc = np.frombuffer(p, np.uint8).reshape(self.size, p.line_size)[:, :3 * self.size]
            np.copyto(dst, hwc.reshape(self.size, self.size, 3).transpose(2, 0, 1))

    def _keep(self, out: MutableMapping[int, np.ndarray], i: int, frame: av.VideoFrame) -> None:
        if isinstance(out, _Frames):
            dst = out.slot(i)
            if dst is not None:
                self._into(frame, dst)
                out.have[i - out.first] = True
        else:
            out[i] = self._scaled(frame)

    def _seek(self, index: int) -> None:
        target = round((self.start_s + index / self.fps) / self.tb)
        self.container.seek(max(target, 0), stream=self.stream, backward=True, any_frame=False)
        self._frames, self._next, self._key = self.container.decode(self.stream), -1, None

    def read(self, start: int, stop: int, out: MutableMapping[int, np.ndarray], whole_gop: bool = False,
             _from_top: bool = False) -> None:
        """Decode frames [start, stop) into ``out`` (frame index → (size, size, 3) uint8; a dict also
        gets the frames decoded on the way from the keyframe). With ``whole_gop`` the frames decoded
        on the way are kept in any ``out``, and decoding
        goes on to the end of the group of pictures, so that a cache holds whole groups and the
        next window over them decodes nothing a second time (the next keyframe is where the
        spacing says it is; where that is unknown, decoding stops after it)."""
        try:
            # go on from where the decoder stands when that is no further than a seek would start
            if not _from_top and (self._frames is None or not 0 <= start - self._next < max(self.gop, 1)):
                self._seek(start)
            for frame in self._frames:
                i = self._index(frame.pts)
                if self._next == -1 and i > start and not _from_top:  # the seek overshot (no keyframe index)
                    self.container.seek(0, stream=self.stream)
                    self._frames, self._key = self.container.decode(self.stream), None
                    return self.read(start, stop, out, whole_gop, _from_top=True)
                self._next = i + 1
                self.decoded += 1
                if frame.key_frame:
                    if self._key is not None and i > self._key:
                        self.gop = max(self.gop, i - self._key)
                    self._key = i
                # a dict keeps what was decoded on the way too (it is free); a window buffer only its frames
                if (whole_gop or start <= i < stop or not isinstance(out, _Frames)) and i not in out:
                    self._keep(out, i, frame)
                if i >= stop - 1 and (not whole_gop or (self.gop and self._key is not None
                                                        and i + 1 >= self._key + self.gop)):
                    break
                if whole_gop and i >= stop and frame.key_frame:
                    break
            else:
                self._frames, self._next = None, -1  # end of file
        except av.error.FFmpegError as e:
            self._frames, self._next = None, -1
            raise DatasetError(self.path, f"video stream is corrupt ({e})") from e
        missing = [i for i in range(start, stop) if i not in out]
        if missing:
            raise DatasetError(self.path, f"frames {missing[:5]}… are missing from the video (store damaged? rebuild it)")

    def close(self) -> None:
        self._frames = None
        self.container.close()


class _Frames(MutableMapping):
    """Frames [first, first + n) of an episode in one channels-first tensor (n, 3, size, size).

    A mapping frame index → (size, size, 3) frame, so that ``VideoReader.read`` fills it as it
    fills a dict; each frame is laid out channels-first once, as it arrives, and a window is then
    one contiguous slice, not T small arrays stacked and transposed. The tensor comes from
    torch's allocator, which (unlike numpy's for large arrays) does not ask for transparent huge
    pages: first-touching a cache of huge pages cost more than decoding its frames here.
    """

    def __init__(self, n: int, size: int, first: int = 0) -> None:
        self.tensor = torch.empty((n, 3, size, size), dtype=torch.uint8)  # pages are touched when written
        self.array = self.tensor.numpy()
        self.first = int(first)
        self.have = np.zeros(n, bool)

    def __contains__(self, i: object) -> bool:
        k = int(i) - self.first if isinstance(i, (int, np.integer)) else -1
        return 0 <= k < len(self.have) and bool(self.have[k])

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self:
            raise KeyError(i)
        return self.array[i - self.first].transpose(1, 2, 0)

    def __setitem__(self, i: int, frame: np.ndarray) -> None:
        k = int(i) - self.first
        if 0 <= k < len(self.have):  # outside (e.g. the next episode's, in a shared file): dropped
            np.copyto(self.array[k], frame.transpose(2, 0, 1))
            self.have[k] = True

    def __delitem__(self, i: int) -> None:
        self.have[int(i) - self.first] = False

    def __iter__(self) -> Iterator[int]:
        return iter((np.flatnonzero(self.have) + self.first).tolist())

    def __len__(self) -> int:
        return int(self.have.sum())

    def slot(self, i: int) -> np.ndarray | None:
        """Where frame i goes (3, size, size); None outside."""
        k = int(i) - self.first
        return self.array[k] if 0 <= k < len(self.have) else None

    def complete(self, start: int, stop: int) -> bool:
        return bool(self.have[start - self.first:stop - self.first].all())

    def window(self, start: int, stop: int) -> torch.Tensor:
        return self.tensor[start - self.first:stop - self.first]

    @property
    def nbytes(self) -> int:
        return len(self) * (self.array[0].nbytes if len(self.have) else 0)


class _FrameCache:
    """Downsampled frames per episode, least-recently-used episodes evicted past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.eps: OrderedDict[int, _Frames] = OrderedDict()
        self.bytes = 0

    def get(self, ep: int, n: int, size: int) -> _Frames:
        d = self.eps.get(ep)
        if d is None:
            d = self.eps[ep] = _Frames(n, size)
        self.eps.move_to_end(ep)
        return d

    def account(self) -> None:
        self.bytes = sum(d.nbytes for d in self.eps.values())
        while self.bytes > self.max_bytes and len(self.eps) > 1:
            _, d = self.eps.popitem(last=False)
            self.bytes -= d.nbytes


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
        if rows and "session_id" not in rows[0] and (self.split.kind != "all" or places or leave_out):
            # LeRobot's split_dataset / delete_episodes keep only LeRobot's columns of meta/episodes
            raise DatasetError(self.root / "meta/episodes", "has no provenance columns (session_id, place, person): "
                               "only split='all' without places or leave_out can be read (a store rewritten by "
                               "LeRobot's split/delete tools?)")
        chosen = select(rows, self.split)
        if places:
            unknown = set(places) - {r["place"] for r in rows}
            if unknown:
                raise ValueError(f"{self.root}: no episodes from place(s) {sorted(unknown)}")
            chosen = [i for i in chosen if rows[i]["place"] in set(places)]
        self.left_out = {rows[i]["session_id"]: (leave_out or {})[rows[i]["session_id"]] for i in chosen
                         if rows[i].get("session_id") in (leave_out or {})}
        chosen = [i for i in chosen if rows[i].get("session_id") not in self.left_out]
        self.motion_offset = int(motion_offset)
        self.episode_indices = [int(rows[i]["episode_index"]) for i in chosen if rows[i]["length"] >= self.T]
        self.episodes: pa.Table = self.store.episodes.take(pa.array(
            [i for i in chosen if rows[i]["length"] >= self.T], type=pa.int64()))
        self.has_reward_store = self.store.has_labels
        self._lengths = {ep: int(rows[ep]["length"]) for ep in self.episode_indices}
        rank, world = shard or (0, 1)
        self.rank = int(rank)
        self.owner = assign_shards({ep: window_count(n, self.T, self.stride) for ep, n in self._lengths.items()}, world)
        mine = [ep for ep in self.episode_indices if self.owner[ep] == self.rank]  # no rank reads what it does not train on
        cols = ["frame_index", "action", "action_valid", "observation.state"]
        if self.has_reward_store:
            cols += list(L.LABEL_FEATURES)
        if self.store.has_objects:
            cols.append(L.OBJECTS_KEY)
        tables = self.store.read_data(mine, cols)
        self._arrays = {ep: self._load(tables[ep], rows[ep]) for ep in mine}
        self.cache_enabled = bool(cache)
        self._cache = _FrameCache(int(cache_mb) * 2**20)
        self._readers: OrderedDict[int, VideoReader] = OrderedDict()
        self._gop = int((self.store.info.get("egoworld") or {}).get("gop") or 0)
        self.frames_decoded = 0
        self.set_epoch(0)

    # -- metadata ---------------------------------------------------------------------------
    def _load(self, t: pa.Table, row: dict) -> dict[str, Any]:
        n = t.num_rows

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
            r = self._readers[ep] = VideoReader(self.store.video_file(ep), self.store.fps, self.size,
                                                self.store.video_start(ep), self._gop)
            while len(self._readers) > 8:
                _, old = self._readers.popitem(last=False)
                self.frames_decoded += old.decoded
                old.close()
        self._readers.move_to_end(ep)
        return r

    def images(self, ep: int, start: int) -> torch.Tensor:
        """(T, 3, size, size) uint8 frames [start, start+T) of episode ``ep`` (a tensor of its own)."""
        stop = start + self.T
        if not self.cache_enabled:
            out = _Frames(self.T, self.size, first=start)
            self._reader(ep).read(start, stop, out)
            return out.tensor
        store = self._cache.get(ep, self._arrays[ep]["length"], self.size)
        if not store.complete(start, stop):
            missing = start + np.flatnonzero(~store.have[start:stop])
            # whole groups of pictures, from the first missing frame to the last: the next window
            # over them decodes nothing a second time
            self._reader(ep).read(int(missing[0]), int(missing[-1]) + 1, store, whole_gop=True)
            self._cache.account()
        # numpy's copy: one thread, where torch's clone splits 3 MB over threads that wait on a busy CPU
        return torch.from_numpy(store.window(start, stop).numpy().copy())

    def frames(self, ep: int, start: int) -> np.ndarray:
        """(T, size, size, 3) uint8 frames [start, start+T) of episode ``ep``."""
        return self.images(ep, start).numpy().transpose(0, 2, 3, 1)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        ep, start = (int(x) for x in self._index[i])
        a = self._arrays.get(ep)
        if a is None:
            raise IndexError(f"clip {i} is in episode {ep}, which rank {self.owner[ep]} reads, not this one (rank {self.rank})")
        sl = slice(start, start + self.T)
        extra = {"objects": torch.from_numpy(a["objects"][sl].copy())} if "objects" in a else {}
        return {**extra,
            "image": self.images(ep, start),
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


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``default_collate`` for ClipDataset items, stacking with numpy in the main process.

    Same result; torch's stack splits each (B, T, 3, S, S) copy over its intra-op threads, which on
    a busy CPU wait on each other (10× slower measured on 2 shared cores). Workers run torch with
    one thread and stack into shared memory, so there the default is kept.
    """
    if torch.utils.data.get_worker_info() is not None:
        return default_collate(items)
    return {k: torch.from_numpy(np.stack([x[k].numpy() for x in items])) for k in items[0]}


def make_loader(ds: ClipDataset, batch_size: int, shuffle: bool = True, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose batches stack every field (image (B, T, 3, S, S), action (B, T, 138), …).

    The order is fixed by ``seed`` (a seeded generator), whatever ``num_workers`` is.
    """
    g = torch.Generator()
    g.manual_seed(int(seed))
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=num_workers,
                      collate_fn=collate, worker_init_fn=_seed_worker, drop_last=drop_last, persistent_workers=num_workers > 0)
