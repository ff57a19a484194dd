"""Where training clips come from, and in which order — the one place that knows both.

``open_clips`` returns anything with the loader's interface (``len``, ``ds[i]`` → dict of
tensors, ``action_stats()``, ``episodes``): the loader's ``ClipDataset`` for a data folder, or the
synthetic square world for ``synthetic:N`` (tests, benchmarks, smoke runs).

The data order is a pure function of ``(seed, step)``: epoch e visits the clips in
``randperm(n, seed·7919 + e)``, and global step s takes samples ``s·B … s·B + B - 1`` of that
endless sequence. A resumed run therefore needs nothing but the step number to continue with
exactly the batches an unkilled run would have seen, and every DDP rank computes the same
global batch and keeps its own contiguous slice.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

import torch

from egoworld.model.config import Config


class ClipSource(Protocol):
    episodes: list[Any]

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]: ...

    def action_stats(self) -> Any: ...


def open_clips(data: str, cfg: Config, split: str, T: int | None = None, for_training: bool = False,
               shard: tuple[int, int] | None = None) -> ClipSource:
    """The clips of ``split`` ("train", "val", "heldout", "all") of ``data``, ``T`` frames each (default seq_len).

    ``for_training`` applies the run's data ablations (``sync_offset_frames``, ``train_places`` on the
    train split); evaluation always reads the data as it is. ``shard`` = (rank, world): read only the
    episodes this rank trains on (``owner_of``).
    """
    T = T or cfg.seq_len
    if str(data).startswith("synthetic"):
        # synthetic:N[:square[:speed]] — N episodes of the square world (sizes as fractions of the image)
        parts = str(data).split(":")[1:]
        n = int(parts[0]) if parts else 16
        shape = {k: float(v) for k, v in zip(("square", "speed"), parts[1:])}
        from egoworld.train.synthetic import SyntheticClips

        return SyntheticClips(episodes=n, length=max(48, T + 8), T=T, size=cfg.image_size, seed=0, split=split, shard=shard,
                              **shape)
    from egoworld.audit.rights import revoked_sessions
    from egoworld.dataset.loader import ClipDataset

    if for_training and split == "train":
        check_training_store(data)

    # windows half a clip apart: twice the distinct clips of the default tiling, at no decode cost
    ablate = dict(motion_offset=cfg.sync_offset_frames,
                  places=[p for p in cfg.train_places.split(",") if p] if split == "train" else None,
                  # a model must not learn from people who withdrew their consent
                  leave_out=revoked_sessions(data)) if for_training else {}
    ds = ClipDataset(data, T, size=cfg.image_size, split=split, seed=cfg.seed, stride=max(1, T // 2), shard=shard, **ablate)
    if cfg.track_points and for_training and not ds.store.has_objects:
        from egoworld.dataset.build import DatasetError

        raise DatasetError(ds.store.root, f"track_points={cfg.track_points} needs tracked objects "
                                          "(observation.objects) and this store has none: train without it, or "
                                          "rebuild the store from sessions whose truth has object tracks")
    return ds


def check_training_store(data: str) -> None:
    """A damaged store (a data or video file missing, a table unreadable) is an error naming the
    file before any step is taken, even when the damage is outside the training split."""
    from egoworld.dataset.build import DatasetError, resolve_store
    from egoworld.dataset.check import check_store

    root = resolve_store(data)
    problems = check_store(root, decode_videos=False)
    if problems:
        raise DatasetError(root, "the store is damaged: " + "; ".join(problems[:3])
                           + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
                           + " — rebuild it with `egoworld episodes DATA`")


def action_stats(ds: ClipSource) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) per action dimension, whatever shape the source returns them in."""
    st = ds.action_stats()
    if isinstance(st, dict):
        return torch.as_tensor(st["mean"], dtype=torch.float32), torch.as_tensor(st["std"], dtype=torch.float32)
    mean, std = st
    return torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)


@lru_cache(maxsize=4)
def _epoch_perm(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.randperm(n, generator=g)


def batch_indices(step: int, n: int, batch: int, seed: int) -> list[int]:
    """Clip indices of the global batch at ``step`` (deterministic, epoch-wise without replacement)."""
    out = []
    for p in range(step * batch, (step + 1) * batch):
        out.append(int(_epoch_perm(n, seed, p // n)[p % n]))
    return out


def sample_epochs(step: int, n: int, batch: int) -> list[int]:
    """The epoch each sample of the global batch at ``step`` belongs to."""
    return [p // n for p in range(step * batch, (step + 1) * batch)]


def collate(ds: ClipSource, indices: list[int], epochs: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Stack clips into a batch. With ``epochs``, sources that re-draw their window phases per epoch
    (``ClipDataset.set_epoch``) are put in the right epoch first — a function of the step, so resumable."""
    items = []
    for k, i in enumerate(indices):
        if epochs is not None and hasattr(ds, "set_epoch") and getattr(ds, "epoch", None) != epochs[k]:
            ds.set_epoch(epochs[k])
        items.append(ds[i])
    keys = [k for k, v in items[0].items() if isinstance(v, torch.Tensor)]
    return {k: torch.stack([it[k] for it in items]) for k in keys}


def rank_positions(ds: ClipSource, indices: list[int], rank: int, world: int) -> list[int]:
    """The positions of the global batch this rank computes: those whose clip is in its shard of
    episodes (``ds.owner_of``), so that no rank decodes a clip it does not train on. Their number
    varies from step to step; the loop weighs each rank's loss by it."""
    if world == 1:
        return list(range(len(indices)))
    return [j for j, i in enumerate(indices) if ds.owner_of(i) == rank]


def rank_slice(indices: list[int], rank: int, world: int) -> tuple[list[int], int]:
    """This rank's contiguous part of the global batch and its offset in it."""
    if len(indices) % world:
        raise ValueError(f"global batch {len(indices)} is not divisible by {world} processes")
    k = len(indices) // world
    return indices[rank * k:(rank + 1) * k], rank * k


def register_run_on_store(ds: Any, out: Any, lineage: dict) -> None:
    """Record the run in its store's meta/egoworld/runs.json, so that a consent revocation finds this
    model without being told where it lives."""
    import datetime as dt
    from pathlib import Path

    from egoworld.dataset.store import register_run

    store = getattr(ds, "store", None)
    if store is None:
        return
    eps = [e for e in lineage.get("episodes", []) if isinstance(e, dict)]
    register_run(store.root, {
        "run": str(Path(out).resolve()), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "session_ids": sorted({str(e["session_id"]) for e in eps if e.get("session_id")}),
        "subjects": sorted({str(e["subject_id"]) for e in eps if e.get("subject_id")}),
        "episodes": len(eps), "left_out": sorted(lineage.get("left_out") or {})})
