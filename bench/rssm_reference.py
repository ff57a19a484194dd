"""A plain PyTorch RSSM world model, written the way a DreamerV3 port writes it — the training-speed
reference for ``bench/train_speed.py``.

Same sizes as an egoworld preset (CNN depth and stages, deter, stoch × classes, hidden, reward bins,
action size, batch × clip length) and the same losses DreamerV3 has: image MSE through a conv
decoder, reward (two-hot over symlog bins) and continuation heads, KL balancing with free nats.
Written as the ports are (``dreamerv3-torch`` and the like): ``torch.distributions`` for the
categorical latents (``OneHotCategoricalStraightThrough``, ``Independent``, ``kl_divergence``), a
layer-normed GRU cell of its own, one Python step per frame, ``torch.optim.Adam``. None of
egoworld's extras (body state, warp decoder, ego/state heads, open-loop overshooting loss).
Imports nothing from egoworld.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import distributions as D
from torch import nn


class ChannelLN(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.norm = nn.LayerNorm(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GRUCell(nn.Module):
    """DreamerV3's GRU: one linear layer on [x, h], layer norm, update gate biased to keep h."""

    def __init__(self, inp: int, size: int):
        super().__init__()
        self.layer = nn.Linear(inp + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        parts = self.norm(self.layer(torch.cat([x, h], -1)))
        reset, cand, update = torch.split(parts, parts.shape[-1] // 3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * h


def mlp(inp: int, hidden: int, out: int, layers: int = 1) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.SiLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, out))


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def twohot(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    below = (bins <= x[..., None]).sum(-1).clamp(1, len(bins) - 1) - 1
    above = below + 1
    w = ((x - bins[below]) / (bins[above] - bins[below])).clamp(0, 1)
    return F.one_hot(below, len(bins)) * (1 - w)[..., None] + F.one_hot(above, len(bins)) * w[..., None]


class PlainWorldModel(nn.Module):
    def __init__(self, image_size: int = 64, depth: int = 16, min_res: int = 4, deter: int = 192, stoch: int = 16,
                 classes: int = 16, hidden: int = 192, action_dim: int = 138, reward_bins: int = 41,
                 unimix: float = 0.01, free_nats: float = 1.0):
        super().__init__()
        self.stoch, self.classes, self.deter, self.unimix, self.free_nats = stoch, classes, deter, unimix, free_nats
        n = 0
        while min_res * 2 ** n < image_size:
            n += 1
        enc: list[nn.Module] = []
        ch_in = 3
        for i in range(n):
            enc += [nn.Conv2d(ch_in, depth * 2 ** i, 4, 2, 1), ChannelLN(depth * 2 ** i), nn.SiLU()]
            ch_in = depth * 2 ** i
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        embed = ch_in * min_res * min_res
        self.img_in = nn.Sequential(nn.Linear(stoch * classes + action_dim, hidden), nn.LayerNorm(hidden), nn.SiLU())
        self.gru = GRUCell(hidden, deter)
        self.prior_net = mlp(deter, hidden, stoch * classes)
        self.post_net = mlp(deter + embed, hidden, stoch * classes)
        feat = deter + stoch * classes
        self.ch0, self.min_res = ch_in, min_res
        self.dec_in = nn.Linear(feat, ch_in * min_res * min_res)
        dec: list[nn.Module] = []
        for i in reversed(range(n)):
            ch = 3 if i == 0 else depth * 2 ** (i - 1)
            dec.append(nn.ConvTranspose2d(ch_in, ch, 4, 2, 1))
            if i:
                dec += [ChannelLN(ch), nn.SiLU()]
            ch_in = ch
        self.decoder = nn.Sequential(*dec)
        self.reward = mlp(feat, hidden, reward_bins)
        self.cont = mlp(feat, hidden, 1)
        self.register_buffer("bins", torch.linspace(-20, 20, reward_bins))

    def dist(self, logits: torch.Tensor) -> D.Distribution:
        logits = logits.reshape(logits.shape[:-1] + (self.stoch, self.classes))
        probs = logits.softmax(-1)
        probs = (1 - self.unimix) * probs + self.unimix / self.classes
        return D.Independent(D.OneHotCategoricalStraightThrough(probs=probs), 1)

    def observe(self, embed: torch.Tensor, action: torch.Tensor):
        B, T = embed.shape[:2]
        h = torch.zeros(B, self.deter)
        z = torch.zeros(B, self.stoch * self.classes)
        hs, zs, post_l, prior_l = [], [], [], []
        for t in range(T):
            a = action[:, t - 1] if t else torch.zeros_like(action[:, 0])
            h = self.gru(self.img_in(torch.cat([z, a], -1)), h)
            prior_logits = self.prior_net(h)
            post_logits = self.post_net(torch.cat([h, embed[:, t]], -1))
            z = self.dist(post_logits).rsample().flatten(-2)
            hs.append(h)
            zs.append(z)
            post_l.append(post_logits)
            prior_l.append(prior_logits)
        return torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(post_l, 1), torch.stack(prior_l, 1)

    def loss(self, image: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        B, T = image.shape[:2]
        x = image.flatten(0, 1).float() / 255.0 - 0.5
        embed = self.encoder(x).reshape(B, T, -1)
        h, z, post_logits, prior_logits = self.observe(embed, action)
        feat = torch.cat([h, z], -1)
        recon = self.decoder(self.dec_in(feat.flatten(0, 1)).reshape(-1, self.ch0, self.min_res, self.min_res)) + 0.5
        image_loss = (recon - (x + 0.5)).square().sum((1, 2, 3)).mean()
        rew_logits = self.reward(feat)
        reward_loss = -(twohot(symlog(reward), self.bins) * rew_logits.log_softmax(-1)).sum(-1).mean()
        cont_loss = F.binary_cross_entropy_with_logits(self.cont(feat).squeeze(-1), 1.0 - done.float())
        post, prior = self.dist(post_logits), self.dist(prior_logits)
        post_sg, prior_sg = self.dist(post_logits.detach()), self.dist(prior_logits.detach())
        dyn = D.kl_divergence(post_sg, prior).clamp(min=self.free_nats).mean()
        rep = D.kl_divergence(post, prior_sg).clamp(min=self.free_nats).mean()
        return image_loss + reward_loss + cont_loss + 0.5 * dyn + 0.1 * rep
