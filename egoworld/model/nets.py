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

from egoworld.model.config import BODY_DIM
from egoworld.state import HEAD_P, HEAD_Q, wrist_p


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
        self.stage_channels = [depth * 2 ** i for i in range(_stages(image_size, min_res))]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image.float() / 255.0 - 0.5)

    def stages(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The activation after every stage, finest first: the skip inputs of a reference decoder."""
        x, out = image.float() / 255.0 - 0.5, []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.SiLU):
                out.append(x)
        return out


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


def quat_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4), scalar first, normalised here."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(q.shape[:-1] + (3, 3))


EGO_DIM = BODY_DIM  # the egocentric vector is the body part of the state (config.BODY_DIM)
EGO_POS_SCALE = 0.25  # metres: a wrist's head-frame spread, so each target column is O(1)


def egocentric(state: torch.Tensor) -> torch.Tensor:
    """The 21-D world-frame state (head p, q; left/right wrist p, q) → what the body can sense (..., 9).

    Both wrists' positions in the head camera's frame (x right, y down, z forward; / 0.25 m) and
    gravity's direction in that frame. Why: the world frame's origin is a property of the room, not
    of anything in view, so a latent cannot know it; these are what the images and the body show.
    """
    state = state.float()
    head_p, head_q = state[..., HEAD_P], state[..., HEAD_Q]
    wrists = [to_head_frame(state[..., wrist_p(s)], head_p, head_q) / EGO_POS_SCALE for s in range(2)]
    gravity = -quat_matrix(head_q)[..., 2, :]  # world −z in head axes: the third row of R, i.e. Rᵀ(0, 0, −1)
    return torch.cat(wrists + [gravity], -1)


def to_head_frame(p: torch.Tensor, head_p: torch.Tensor, head_q: torch.Tensor) -> torch.Tensor:
    """World points (..., 3) → the head camera's frame of a head pose (p (..., 3), q wxyz (..., 4)): Rᵀ(p − p_head)."""
    return ((p - head_p).unsqueeze(-2) @ quat_matrix(head_q)).squeeze(-2)  # row vector · R = (Rᵀ v)ᵀ


def axis_angle_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) of axis-angle vectors (..., 3) (Rodrigues)."""
    theta = w.norm(dim=-1, keepdim=True).unsqueeze(-1)
    x, y, z = w.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(w.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(K)
    small = theta < 1e-6
    t = theta.clamp_min(1e-6)
    a = torch.where(small, torch.ones_like(t), torch.sin(t) / t)
    b = torch.where(small, 0.5 * torch.ones_like(t), (1 - torch.cos(t)) / t.square())
    return eye + a * K + b * (K @ K)


def chained_rotations(w: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) per-step head rotations (axis-angle, each in the camera frame of its step) →
    (B, K, 3, 3) the camera's orientation after 1…K steps in the starting camera's frame:
    R_k = exp(w_0) · exp(w_1) · … · exp(w_{k-1})."""
    steps = axis_angle_matrix(w)
    out, acc = [], torch.eye(3, dtype=w.dtype, device=w.device).expand(w.shape[0], 3, 3)
    for k in range(w.shape[1]):
        acc = acc @ steps[:, k]
        out.append(acc)
    return torch.stack(out, 1)


def rotation_grid(grid: torch.Tensor, rot: torch.Tensor, tan_half: float) -> torch.Tensor:
    """Where each target pixel was in the reference frame if the camera only rotated by ``rot``.

    ``grid`` (S, S, 2) normalised pixel coordinates of the target; ``rot`` (N, 3, 3) the target
    camera's orientation in the reference camera's frame (OpenCV axes: x right, y down, z forward);
    ``tan_half`` tan(FOV/2). A pure rotation moves pixels by the homography K R K⁻¹, exact for any
    depth — most of a head-mounted camera's image motion. Rays that turn behind the reference
    camera are pushed far outside the image (the border is sampled; the mask must cover them).
    """
    S = grid.shape[0]
    ray = torch.cat([grid * tan_half, torch.ones(S, S, 1, dtype=grid.dtype, device=grid.device)], -1)
    d = torch.einsum("nij,hwj->nhwi", rot, ray)
    z = d[..., 2:].clamp_min(1e-3)
    return d[..., :2] / z / tan_half


class WarpDecoder(nn.Module):
    """Features of a target state and of a reference state + the reference frame → the target frame.

    Why: most of the next frames of first-person video is the last frame seen from a slightly
    moved head, plus hands and objects that moved. Drawing every frame from the latent alone
    throws the reference away and loses to "copy the last frame" for many steps. This decoder
    outputs a flow field that warps the reference frame, a new-content image, and a per-pixel
    mask blending the two (as in video prediction since Finn et al. 2016). It starts out as
    "copy the reference" (zero flow, mask ≈ 1) and learns the change.

    The reference frame's encoder activations enter every upsampling stage (U-Net skips); their
    transposed convolution is computed once per reference and broadcast over the target
    states, because a stage's conv over [x, skip] is the sum of its convs over each part.
    """

    def __init__(self, feat: int, image_size: int, depth: int, min_res: int, skip_channels: list[int],
                 extra: int = 0, fov_deg: float | None = None, rot_open: bool = False):
        super().__init__()
        self.tan_half = math.tan(math.radians(fov_deg) / 2) if fov_deg else None
        n = _stages(image_size, min_res)
        self.ch0 = depth * 2 ** (n - 1)
        self.min_res = min_res
        self.size = image_size
        self.inp = nn.Linear(2 * feat + extra, self.ch0 * min_res * min_res)
        self.ups, self.skip_ups, self.norms = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        ch_in = self.ch0
        for i in reversed(range(n)):
            last = i == 0
            ch = 6 if last else depth * 2 ** (i - 1)
            self.ups.append(nn.ConvTranspose2d(ch_in, ch, 4, 2, 1))
            self.skip_ups.append(nn.ConvTranspose2d(skip_channels[i], ch, 4, 2, 1, bias=False))
            self.norms.append(nn.Identity() if last else nn.Sequential(ChannelNorm(ch), nn.SiLU()))
            ch_in = ch
        with torch.no_grad():  # start as "copy the reference": no flow, mask ≈ 0.95 on the warp
            for conv in (self.ups[-1], self.skip_ups[-1]):
                conv.weight.mul_(0.05)
            self.ups[-1].bias.zero_()
            self.ups[-1].bias[2] = 3.0
        # How much of the rotation homography to apply. Rotations chained from the actions are right
        # from the start (``rot_open``: gate 1). Read from the state head they are random at first,
        # and warping by them would teach the decoder to ignore the warp: the gate starts at 0 and
        # opens as they become right (by gradient, like any weight).
        # (×25: one scalar under Adam moves ~lr per step; this lets it open within ~100 steps)
        self.rot_gate_scale = 25.0
        self.rot_gate = nn.Parameter(torch.full((), 1.0 / self.rot_gate_scale if rot_open else 0.0))
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, image_size), torch.linspace(-1, 1, image_size), indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys], -1), persistent=False)

    def skips(self, stages: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-stage skip contributions of a reference (N_ref, ...), coarsest stage first."""
        return [up(s) for up, s in zip(self.skip_ups, reversed(stages))]

    def forward(self, feat: torch.Tensor, ref_feat: torch.Tensor, ref_image: torch.Tensor, skips: list[torch.Tensor],
                extra: torch.Tensor | None = None, rot: torch.Tensor | None = None) -> torch.Tensor:
        """feat (R, K, F) — K target states per reference; ref_feat (R, F); ref_image (R, 3, S, S) uint8;
        ``rot`` (R, K, 3, 3): the camera's rotation since the reference, the warp's starting point."""
        R, K = feat.shape[:2]
        parts = [feat, ref_feat[:, None].expand(R, K, -1)] + ([extra] if extra is not None else [])
        x = self.inp(torch.cat(parts, -1)).reshape(R * K, self.ch0, self.min_res, self.min_res)
        for up, skip, norm in zip(self.ups, skips, self.norms):
            y = up(x)
            y = (y.unflatten(0, (R, K)) + skip[:, None]).flatten(0, 1)
            x = norm(y)
        flow, mask, rgb = x[:, :2], torch.sigmoid(x[:, 2:3]), x[:, 3:] + 0.5
        ref = (ref_image.float() / 255.0)[:, None].expand(R, K, -1, -1, -1).flatten(0, 1)
        base = self.grid
        if rot is not None and self.tan_half is not None:
            base = base + self.rot_gate * self.rot_gate_scale * (rotation_grid(self.grid, rot.flatten(0, 1), self.tan_half) - base)
        grid = base + flow.permute(0, 2, 3, 1)
        warped = F.grid_sample(ref, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return mask * warped + (1 - mask) * rgb
