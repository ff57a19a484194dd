"""Building blocks: symlog, twohot, categorical latents with unimix, conv encoder/decoder, MLPs.

These follow DreamerV3's choices (Hafner et al. 2023) because each one fixes a concrete failure:
symlog squashes targets of unknown scale so one learning rate fits all; unimix keeps every class
probability ≥ 1 %/classes so the KL never explodes; twohot regression over symlog bins makes the
reward head robust to its scale.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class Noise:
    """Uniform noise for latent sampling, drawn for the *global* batch and sliced to this rank's part.

    Why: with DDP each rank sees a slice of the global batch; if each drew its own noise the samples
    (and so the gradients) would differ from a single process running the whole batch. Drawing the
    global batch's noise from one seeded generator on every rank and keeping the own slice makes
    one process and N processes compute exactly the same samples.
    """

    def __init__(self, generator: torch.Generator | None = None, global_batch: int | None = None, offset: int = 0):
        self.generator = generator
        self.global_batch = global_batch
        self.offset = offset

    def uniform(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        if self.generator is None:
            return torch.rand(shape, device=device)
        full = (self.global_batch or shape[0],) + tuple(shape[1:])
        u = torch.rand(full, generator=self.generator, device=self.generator.device)
        return u[self.offset:self.offset + shape[0]].to(device)


def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    probs = logits.softmax(-1)
    if unimix > 0:
        probs = (1 - unimix) * probs + unimix / probs.shape[-1]
    return probs


def sample_onehot(probs: torch.Tensor, noise: Noise | None) -> torch.Tensor:
    """A one-hot sample with straight-through gradients (inverse-CDF sampling from given noise)."""
    shape = probs.shape
    u = (noise or Noise()).uniform((shape[0], math.prod(shape[1:-1]) if len(shape) > 2 else 1), probs.device)
    u = u.reshape(shape[:-1] + (1,))
    cdf = probs.detach().cumsum(-1)
    idx = (cdf < u * cdf[..., -1:]).sum(-1).clamp(max=shape[-1] - 1)
    onehot = F.one_hot(idx, shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


def mode_onehot(probs: torch.Tensor) -> torch.Tensor:
    return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) for (..., stoch, classes) probabilities, summed over latents → (...)."""
    return (p * (p.clamp_min(1e-8).log() - q.clamp_min(1e-8).log())).sum((-2, -1))


def twohot(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Encode scalars (...) as weights on the two nearest bins (..., n_bins)."""
    x = x.clamp(bins[0], bins[-1])
    hi = torch.searchsorted(bins, x.contiguous(), right=False).clamp(1, len(bins) - 1)
    lo = hi - 1
    w_hi = ((x - bins[lo]) / (bins[hi] - bins[lo])).clamp(0, 1)
    out = torch.zeros(x.shape + (len(bins),), dtype=x.dtype, device=x.device)
    out.scatter_(-1, lo.unsqueeze(-1), (1 - w_hi).unsqueeze(-1))
    out.scatter_add_(-1, hi.unsqueeze(-1), w_hi.unsqueeze(-1))
    return out


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of an image feature map (DreamerV3 normalises this way)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def mlp(inp: int, hidden: int, out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.SiLU()]
    mods.append(nn.Linear(hidden if layers else inp, out))
    return nn.Sequential(*mods)


def _stages(image_size: int, min_res: int) -> int:
    n = int(round(math.log2(image_size / min_res)))
    if n < 1 or min_res * 2 ** n != image_size:
        raise ValueError(f"image_size {image_size} must be min_res {min_res} times a power of two")
    return n


class ConvEncoder(nn.Module):
    """uint8 images (N, 3, S, S) → embedding (N, embed_size): stride-2 convs, channel norm, SiLU."""

    def __init__(self, image_size: int, depth: int, min_res: int):
        super().__init__()
        layers: list[nn.Module] = []
        ch_in = 3
        for i in range(_stages(image_size, min_res)):
            ch = depth * 2 ** i
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), ChannelNorm(ch), nn.SiLU()]
            ch_in = ch
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.embed_size = ch_in * min_res * min_res

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image.float() / 255.0 - 0.5)


class ConvDecoder(nn.Module):
    """Features (N, feat) → image mean (N, 3, S, S) in [0, 1] units (not clipped: the loss is MSE)."""

    def __init__(self, feat: int, image_size: int, depth: int, min_res: int):
        super().__init__()
        n = _stages(image_size, min_res)
        self.ch0 = depth * 2 ** (n - 1)
        self.min_res = min_res
        self.inp = nn.Linear(feat, self.ch0 * min_res * min_res)
        layers: list[nn.Module] = []
        ch_in = self.ch0
        for i in reversed(range(n)):
            last = i == 0
            ch = 3 if last else depth * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(ch_in, ch, 4, 2, 1))
            if not last:
                layers += [ChannelNorm(ch), nn.SiLU()]
            ch_in = ch
        self.net = nn.Sequential(*layers)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.inp(feat).reshape(-1, self.ch0, self.min_res, self.min_res)
        return self.net(x) + 0.5
