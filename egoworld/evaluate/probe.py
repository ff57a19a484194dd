"""State probes: a small regression from a model's latent feature [h, z] to true positions.

Why a probe: pixels reward blur and background; the question that matters for planning is
whether the *imagined* latent still knows where the hands and objects are. The probe is fitted
on features of training episodes and then applied, unchanged, to imagined features at every
horizon. It reads only the feature, never a frame, so it cannot find the answer elsewhere.

Two kinds: ``RidgeProbe`` (linear) and ``MLPProbe`` (one hidden layer, the default). The
targets are camera-frame positions, R_headᵀ(p − p_head): a *product* of the head's rotation and
a position, which the latent holds as separate factors (its state head predicts world-frame
poses). A linear read-out cannot form that product — measured on the 20-minute tiny run it
explained ~15 % of the hands' spread — so a linear probe mostly measured its own limits.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

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


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: multi-threaded reductions may sum in another order, and the same seed must give the same probe."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class MLPProbe(torch.nn.Module):
    """Standardised features → a SiLU hidden layer, or a ridge fit, per target → standardised targets.

    Both are fitted on the same clips; each target column takes whichever predicts it better on the 15 %
    of clips held back (which also early-stop the network). Why both: a feature that already *is* a
    target (the body part of the state holds the wrists in the head frame) is read exactly by the
    closed-form linear fit (0.3 cm) but 4 cm off by a network trained on all targets at once and stopped
    when the object targets stop improving; the object targets need the hidden layer (docs/results/model.md).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, y_mean: torch.Tensor, y_std: torch.Tensor, hidden: int):
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.register_buffer("y_mean", y_mean.float())
        self.register_buffer("y_std", y_std.float())
        self.net = torch.nn.Sequential(torch.nn.Linear(len(mean), hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, len(y_mean)))
        self.linear = torch.nn.Linear(len(mean), len(y_mean))
        self.register_buffer("use_linear", torch.zeros(len(y_mean), dtype=torch.bool))

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, group: torch.Tensor | None = None, hidden: int = 256,
            weight_decay: float = 1e-3, epochs: int = 200, batch: int = 512, patience: int = 15,
            seed: int = 0, l2: float = 10.0) -> "MLPProbe":
        """Fit on (N, F) → (N, D); ``group`` (N,) ids (e.g. clip index) pick the 15 % held back for early stopping."""
        gen = torch.Generator().manual_seed(seed)
        x, y = x.float(), y.float()
        group = torch.arange(len(x)) if group is None else group
        ids = group.unique()
        held = ids[torch.randperm(len(ids), generator=gen)[: max(1, int(0.15 * len(ids)))]]
        val = torch.isin(group, held)
        tr = ~val if (~val).any() else val
        # Feature std floored at 0.1: a latent class (one-hot) the training clips almost never use would
        # otherwise be scaled by 1/std and blow up the output wherever it does turn on (a new room did).
        probe = cls(x[tr].mean(0), x[tr].std(0).clamp_min(0.1), y[tr].mean(0), y[tr].std(0).clamp_min(1e-6), hidden)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            probe.net.apply(lambda m: m.reset_parameters() if isinstance(m, torch.nn.Linear) else None)
        opt = torch.optim.AdamW(probe.net.parameters(), lr=2e-3, weight_decay=weight_decay)
        xt, yt = x[tr], y[tr]
        best, best_state, bad = float("inf"), None, 0
        with torch.enable_grad(), one_thread():
            for _ in range(epochs):
                probe.train()
                for idx in torch.randperm(len(xt), generator=gen).split(batch):
                    loss = (probe._norm_net(xt[idx]) - (yt[idx] - probe.y_mean) / probe.y_std).square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    v = (probe(x[val]) - y[val]).square().mean().item()
                if v < best - 1e-7:
                    best, bad = v, 0
                    best_state = {k: t.clone() for k, t in probe.state_dict().items()}
                else:
                    bad += 1
                    if bad >= patience:
                        break
        if best_state is not None:
            probe.load_state_dict(best_state)
        # ridge on the probe's own standardisation (its 0.1 floor keeps rare one-hot classes tame), bias unpenalised
        xs = torch.cat([(xt.double() - probe.mean.double()) / probe.std.double(), torch.ones(len(xt), 1, dtype=torch.float64)], 1)
        reg = l2 * torch.eye(xs.shape[1], dtype=torch.float64)
        reg[-1, -1] = 0
        w = torch.linalg.solve(xs.T @ xs + reg, xs.T @ ((yt.double() - probe.y_mean.double()) / probe.y_std.double()))
        with torch.no_grad():
            probe.linear.weight.copy_(w[:-1].T.float())
            probe.linear.bias.copy_(w[-1].float())
            xv = (x[val] - probe.mean) / probe.std
            yv = (y[val] - probe.y_mean) / probe.y_std
            probe.use_linear.copy_((probe.linear(xv) - yv).square().mean(0) < (probe.net(xv) - yv).square().mean(0))
        return probe.eval().requires_grad_(False)

    def _norm_net(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.float() - self.mean) / self.std)

    def _norm_out(self, x: torch.Tensor) -> torch.Tensor:
        xs = (x.float() - self.mean) / self.std
        return torch.where(self.use_linear, self.linear(xs), self.net(xs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with one_thread():
            return self._norm_out(x) * self.y_std + self.y_mean


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
