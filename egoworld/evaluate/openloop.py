"""Open-loop prediction vs horizon, for the model and its baselines, on fixed evaluation clips.

From C real context frames the model filters a state, then imagines H frames driven only by
the recorded actions. At horizon h we score the imagined frame t = C-1+h against the real one:
PSNR, SSIM, and the state-probe error (true hand/object positions read from the imagined latent).

Baselines, on exactly the same clips:
  * copy-last: the last context frame, repeated (and, for the probe, the probe applied to the
    last filtered state — "nothing moves");
  * action-blind: the same architecture trained with actions zeroed (its own probe).
"""
from __future__ import annotations

from typing import Any

import torch

from egoworld.evaluate.metrics import psnr, ssim
from egoworld.evaluate.probe import MLPProbe, RidgeProbe, rmse_by_group
from egoworld.evaluate.tracking import TRACK_HORIZON, clip_errors, summarise
from egoworld.model import WorldModel
from egoworld.train.data import collate

HORIZONS = (1, 2, 5, 10, 20, 32)


def eval_indices(n: int, max_clips: int) -> list[int]:
    """Evenly spread clip indices (deterministic: every model sees the same clips)."""
    k = min(n, max_clips)
    return [int(i * n / k) for i in range(k)]


def batches(ds: Any, indices: list[int], batch_size: int) -> list[dict[str, torch.Tensor]]:
    return [collate(ds, indices[i:i + batch_size]) for i in range(0, len(indices), batch_size)]


@torch.no_grad()
def fit_probe(model: WorldModel, bs: list[dict[str, torch.Tensor]], targets: Any, l2: float = 10.0,
              context: int | None = None, kind: str = "mlp") -> RidgeProbe | MLPProbe:
    """State probe (``kind`` "mlp" or "ridge") from state features to true positions, on (training) clips.

    Fitted on the filtered (posterior) features of every frame and, with ``context``, also on the
    open-loop (prior) features imagined from the first ``context`` frames under the recorded
    actions: the probe is then applied to both kinds (copy-last reads a filtered state, the model
    imagined ones), and a probe fitted on one kind alone extrapolates on the other.
    """
    xs, ys, gs = [], [], []
    n_clips = 0
    for b in bs:
        valid = b.get("action_valid")
        posts, _ = model.observe(b["image"], b["action"], valid, sample=False, state=b.get("state"), objects=b.get("objects"))
        y = targets(b)
        feats, ys_b = [posts.feat()], [y]
        B, T = b["image"].shape[:2]
        clip = (n_clips + torch.arange(B))[:, None].expand(B, T)
        gs_b = [clip]
        if context is not None and 1 <= context < T:
            _, _, states = model.predict(b["image"][:, :context], b["action"][:, :T - 1],
                                          valid=None if valid is None else valid[:, :T - 1], state=b.get("state"),
                                          objects=b.get("objects"))
            feats.append(states.feat())
            ys_b.append(y[:, context:])
            gs_b.append(clip[:, context:])
        n_clips += B
        for f, t, g in zip(feats, ys_b, gs_b):
            ok = torch.isfinite(t).all(-1)
            xs.append(f[ok])
            ys.append(t[ok])
            gs.append(g[ok])
    x, y = torch.cat(xs), torch.cat(ys)
    if kind == "ridge":
        return RidgeProbe.fit(x, y, l2)
    if kind == "mlp":
        return MLPProbe.fit(x, y, torch.cat(gs))
    raise ValueError(f"unknown probe kind {kind!r} (mlp or ridge)")


@torch.no_grad()
def rollout_metrics(model: WorldModel | None, bs: list[dict[str, torch.Tensor]], context: int, horizon: int,
                    probe: RidgeProbe | MLPProbe | None, targets: Any, copy_last: bool = False,
                    clips: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Per-horizon means (lists of length ``horizon``) of psnr, ssim and probe RMSE per group; for a model
    with tracked points on clips with a tracker, also ``tracked_object`` (``tracking.summarise``).

    ``copy_last``: score the copy-last baseline instead (frames: the last context frame; probe:
    ``model``'s probe on its last filtered state). ``clips``, when given, receives the per-clip
    values (N, horizon) of each metric and each clip's episode (``"episode"``, (N,)), for
    paired comparisons (``paired_difference``).
    """
    C, H = context, horizon
    acc: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": []}
    track_h = min(H, TRACK_HORIZON)
    tracked: list[tuple[torch.Tensor, torch.Tensor]] = []
    for b in bs:
        real = b["image"][:, C:C + H]
        act, valid = b["action"][:, :C - 1 + H], b["action_valid"][:, :C - 1 + H]
        feats = None
        if copy_last:
            pred = b["image"][:, C - 1:C].expand_as(real)
            if model is not None and probe is not None:
                state, objects = b.get("state"), b.get("objects")
                posts, _ = model.observe(b["image"][:, :C], act[:, :C], valid[:, :C], sample=False,
                                         state=None if state is None else state[:, :C],
                                         objects=None if objects is None else objects[:, :C])
                feats = posts.feat()[:, -1:].expand(-1, H, -1)
        else:
            pred, _, states = model.predict(b["image"][:, :C], act, valid=valid, state=b.get("state"), objects=b.get("objects"))
            feats = states.feat()
            te = clip_errors(model, states.b, b, C, track_h)
            if te is not None:
                tracked.append(te)
        acc["psnr"].append(psnr(pred, real))
        acc["ssim"].append(ssim(pred, real))
        if probe is not None and feats is not None:
            y = targets(b)[:, C:C + H]
            for g, v in rmse_by_group(probe(feats), y, targets.groups).items():
                acc.setdefault(f"probe_{g}", []).append(v)
    out = {}
    for k, v in acc.items():
        t = torch.cat(v).float()
        out[k] = torch.nanmean(t, 0).tolist()
        if clips is not None:
            clips[k] = t
    if clips is not None:
        eps = [b["episode_index"] if b["episode_index"].dim() == 1 else b["episode_index"][:, 0] for b in bs]
        clips["episode"] = torch.cat(eps)
    out["n_clips"] = int(sum(len(b["image"]) for b in bs))
    if tracked:
        out["tracked_object"] = summarise(torch.cat([e for e, _ in tracked]), torch.cat([m for _, m in tracked]), track_h)
    return out


def paired_difference(a: torch.Tensor, b: torch.Tensor, episode: torch.Tensor, higher_is_better: bool,
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> torch.Tensor:
    """How much better ``a`` is than ``b`` on the same clips (N, H): per horizon (mean, low, high) → (H, 3).

    Positive = ``a`` better. The interval is a cluster bootstrap over episodes (clips of one
    episode overlap and share a room, a person and a task, so they are not independent draws;
    resampling clips would make the interval too narrow). It covers the clips drawn, not the
    randomness of training or of fitting the probe.
    """
    d = (a - b) if higher_is_better else (b - a)
    ok = torch.isfinite(d)
    d = torch.where(ok, d, torch.zeros(()))
    ids, inv = episode.unique(return_inverse=True)
    G, H = len(ids), d.shape[1]
    sums = torch.zeros(G, H, dtype=torch.float64).index_add_(0, inv, d.double())
    counts = torch.zeros(G, H, dtype=torch.float64).index_add_(0, inv, ok.double())
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randint(G, (n_boot, G), generator=gen)
    weights = torch.zeros(n_boot, G, dtype=torch.float64).scatter_add_(1, picks, torch.ones(n_boot, G, dtype=torch.float64))
    boot = (weights @ sums) / (weights @ counts).clamp_min(1e-12)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(boot, q, dim=0)
    mean = sums.sum(0) / counts.sum(0).clamp_min(1e-12)
    return torch.stack([mean, lo, hi], -1).float()


def at_horizons(curve: list[float], horizons: tuple[int, ...] = HORIZONS) -> dict[str, float]:
    """{"1": value at horizon 1, ...} for the horizons a curve reaches."""
    return {str(h): round(float(curve[h - 1]), 5) for h in horizons if h <= len(curve)}


@torch.no_grad()
def example_frames(model: WorldModel, blind: WorldModel | None, b: dict[str, torch.Tensor], context: int,
                   horizon: int) -> dict[str, torch.Tensor]:
    """uint8 frames (B, C+H, 3, S, S) for side-by-side videos: real, imagined, copy-last, blind."""
    C, H = context, horizon
    act, valid = b["action"][:, :C - 1 + H], b["action_valid"][:, :C - 1 + H]
    real = b["image"][:, :C + H]
    to8 = lambda x: (x * 255).round().clamp(0, 255).to(torch.uint8)  # noqa: E731
    pred = to8(model.predict(b["image"][:, :C], act, valid=valid, state=b.get("state"))[0])
    out = {"real": real, "model": torch.cat([real[:, :C], pred], 1),
           "copy_last": torch.cat([real[:, :C], real[:, C - 1:C].expand(-1, H, -1, -1, -1)], 1)}
    if blind is not None:
        out["action_blind"] = torch.cat([real[:, :C], to8(blind.predict(b["image"][:, :C], act, valid=valid, state=b.get("state"))[0])], 1)
    return out
