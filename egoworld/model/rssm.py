"""The recurrent state-space model (RSSM): deterministic GRU state h + categorical latent z.

One step of the dynamics (the action a_{t-1} moved the body between frames t-1 and t):

    h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])
    prior      p(z_t | h_t)          — used to imagine, no image needed
    posterior  q(z_t | h_t, e_t)     — used to filter, e_t = encoder(image_t)

The feature a decoder or head reads is [h_t, flatten(z_t)].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from egoworld.model.config import Config
from egoworld.model.nets import Noise, mode_onehot, sample_onehot, unimix_probs


@dataclass
class State:
    """A batch of RSSM states. ``z`` is one-hot (B, stoch, classes); ``probs`` the distribution it came from."""

    h: torch.Tensor
    z: torch.Tensor
    probs: torch.Tensor

    def feat(self) -> torch.Tensor:
        return torch.cat([self.h, self.z.flatten(-2)], -1)


def stack_states(states: list[State], dim: int = 1) -> State:
    return State(*(torch.stack([getattr(s, k) for s in states], dim) for k in ("h", "z", "probs")))


class RSSM(nn.Module):
    def __init__(self, cfg: Config, embed_size: int):
        super().__init__()
        self.cfg = cfg
        self.img_in = nn.Sequential(nn.Linear(cfg.stoch_size + cfg.action_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU())
        self.gru = nn.GRUCell(cfg.hidden, cfg.deter)
        self.prior_net = nn.Sequential(nn.Linear(cfg.deter, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
                                       nn.Linear(cfg.hidden, cfg.stoch_size))
        self.post_net = nn.Sequential(nn.Linear(cfg.deter + embed_size, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
                                      nn.Linear(cfg.hidden, cfg.stoch_size))
        # A learned initial h (DreamerV3): the first frame of a clip has no history.
        self.h0 = nn.Parameter(torch.zeros(cfg.deter))

    def _dist(self, logits: torch.Tensor) -> torch.Tensor:
        return unimix_probs(logits.reshape(logits.shape[:-1] + (self.cfg.stoch, self.cfg.classes)), self.cfg.unimix)

    def initial_h(self, batch: int) -> torch.Tensor:
        return torch.tanh(self.h0).expand(batch, -1)

    def deter_step(self, prev: State, action: torch.Tensor) -> torch.Tensor:
        x = self.img_in(torch.cat([prev.z.flatten(-2), action], -1))
        return self.gru(x, prev.h)

    def prior(self, h: torch.Tensor) -> torch.Tensor:
        return self._dist(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return self._dist(self.post_net(torch.cat([h, embed], -1)))

    def observe(self, embed: torch.Tensor, action: torch.Tensor, noise: Noise | None = None,
                sample: bool = True) -> tuple[State, torch.Tensor]:
        """Filter a clip: embeddings (B, T, E) and actions (B, T, A) → posterior states (B, T, ·) and prior probs.

        ``action[:, t]`` is what happened between frames t and t+1, so frame t+1's step uses it;
        the last action of the clip is not used.
        """
        B, T = embed.shape[:2]
        posts, priors = [], []
        h = self.initial_h(B)
        state: State | None = None
        for t in range(T):
            if state is not None:
                h = self.deter_step(state, action[:, t - 1])
            prior = self.prior(h)
            post = self.posterior(h, embed[:, t])
            z = sample_onehot(post, noise) if sample else mode_onehot(post)
            state = State(h, z, post)
            posts.append(state)
            priors.append(prior)
        return stack_states(posts), torch.stack(priors, 1)

    def img_step(self, prev: State, action: torch.Tensor, noise: Noise | None = None, sample: bool = True) -> State:
        """One imagined step: the next state from the prior, without an image."""
        h = self.deter_step(prev, action)
        probs = self.prior(h)
        z = sample_onehot(probs, noise) if sample else mode_onehot(probs)
        return State(h, z, probs)

    def imagine(self, start: State, actions: torch.Tensor, noise: Noise | None = None, sample: bool = True) -> State:
        """Open-loop rollout from ``start`` (B, ·) under actions (B, H, A) → states (B, H, ·) at t+1…t+H."""
        out, state = [], start
        for k in range(actions.shape[1]):
            state = self.img_step(state, actions[:, k], noise, sample)
            out.append(state)
        return stack_states(out)
