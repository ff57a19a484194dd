"""State probes: a ridge regression from a model's latent feature [h, z] to true positions.

Why a probe: pixels reward blur and background; the question that matters for planning is
whether the *imagined* latent still knows where the hands and objects are. The probe is fitted
on posterior features of training episodes (the model saw those frames) and then applied,
unchanged, to imagined features at every horizon. Linear on purpose: a strong probe could
compute the answer from the frame itself and hide a poor latent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class RidgeProbe:
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (F + 1, D)

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, l2: float = 1.0) -> "RidgeProbe":
        """Fit on features (N, F) and targets (N, D), in float64 for a well-conditioned solve."""
        x, y = x.double(), y.double()
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        xs = torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        reg = l2 * torch.eye(xs.shape[1], dtype=x.dtype)
        reg[-1, -1] = 0  # no penalty on the bias
        w = torch.linalg.solve(xs.T @ xs + reg, xs.T @ y)
        return cls(mean, std, w)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xs = (x.double() - self.mean) / self.std
        return (torch.cat([xs, torch.ones(*xs.shape[:-1], 1, dtype=xs.dtype)], -1) @ self.weight).float()


# A target source turns a batch (and the dataset it came from) into true positions (B, T, D) and
# the name of each column group, e.g. {"hands": [0..5], "object": [6..8]}.
TargetFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def rmse_by_group(pred: torch.Tensor, true: torch.Tensor, groups: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """Euclidean-style RMSE per group over the last dim → (...) each, plus 'all'."""
    out = {}
    for name, cols in groups.items():
        out[name] = (pred[..., cols] - true[..., cols]).square().mean(-1).sqrt()
    out["all"] = (pred - true).square().mean(-1).sqrt()
    return out
