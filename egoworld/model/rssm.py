"""The recurrent state-space model (RSSM): deterministic GRU state h + categorical latent z [+ body b].

One step of the dynamics (the action a_{t-1} moved the body between frames t-1 and t):

    h_t = GRU(h_{t-1}, [z_{t-1}, b_{t-1}, a_{t-1}])
    prior      p(z_t | h_t)          — used to imagine, no image needed
    posterior  q(z_t | h_t, e_t)     — used to filter, e_t = encoder(image_t)
    body       b_t = kin(b_{t-1}, a_{t-1}) + f(h_t, b_{t-1}, a_{t-1})  predicted; the sensed value when there is one

The feature a decoder or head reads is [h_t, flatten(z_t), b_t].

Why a continuous body part (``body_state``; DreamerV3 has only h and z): the body's own configuration
— both wrists in the head camera's frame and gravity's direction, what hand tracking and the IMU
sense — is observed almost exactly and moved by the action almost deterministically. Pushed
through the categorical bottleneck it was not learned in a CPU budget: with the sensed values fed
to the posterior, a 20-minute run's filtered latent still placed the hands 14 cm off (the data's
spread is 17 cm). Carried as a state of its own it is exact when sensed, and the imagined state
has to predict how the actions move it — the part of the future the body itself decides.

``kin`` is that motion as the action defines it (``egoworld.actions``): the head moved by (t, R) in
its own frame and each wrist by d in the same frame, so a wrist seen from the head goes from p to
Rᵀ(p + d − t) and gravity from g to Rᵀg — exact (1e-7 m on recorded sim data) wherever the action is
valid, as the warp decoder's rotation is. The learned step f covers the rest (invalid actions, a real
tracker's noise). The action-blind twin, whose actions are zero, gets the identity.

Tracked points (``track_points``: an object tracker's report of the task's object and its goal) ride
in the same part, in the head frame: ``kin`` moves them as the head moves (they stay put in the world)
and ``f`` learns what the hands do to them — pushed, carried, pulled. Why: the image latent placed the
task's object only to 13–18 cm, so the reward head could not tell a plan that reaches it from one that
does not; with the points in the state, reaching and moving them are what the dynamics must predict.

Contact (``contact``): left to the residual f, what a hand does to a point was not learned — the frames
where an object moves are a few per cent of the data, and "moves with the hand, but only when the hand is
at it" is a product of two inputs that a small MLP fits slowly. The contact step states that structure:
each point is shifted by each wrist's displacement d (metres, the head frame of t-1) times a gate in
[0, 1], read from the wrist's offset to the point, its distance, d and the hand's action (its grip) —
a point follows the hand that touches or holds it (pushed, carried, a handle pulled). The gate starts
near closed (objects stay put). With it, f moves the body's own part only: left to correct the points
too, f made still objects drift (7 cm over 8 imagined steps on validation clips, against 0.3 cm for the
gate alone, which also placed moved objects 4.7 cm off where "they stay put" is 8.5 cm off).

Contact directions (``contact_dirs``): one gate moves a point along the hand's whole move, so a hand
that touched an object and pulls back drags it along, and a drawer handle follows a sideways move. A
pushed object moves with the part of the move that goes into it, a handle along its rail. With three
gates per (point, hand) the step is g₁·d + g₂·max(d·n, 0)·n + g₃·(d·u)·u: n the unit offset from the
wrist to the point (the contact normal: a push only pushes, pulling needs a grip, which is g₁'s), u the
unit offset from the point to the other tracked points (for the task's object, toward its goal: the
way a drawer slides, either way). The two projections are features of the gates too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from egoworld.actions import HAND_DIM, HEAD, hand_slice
from egoworld.model.config import BODY_DIM, Config
from egoworld.model.nets import EGO_POS_SCALE, Noise, axis_angle_matrix, mode_onehot, sample_onehot, unimix_probs

FIELDS = ("h", "z", "probs", "b")

CONTACT_HIDDEN = 64
CONTACT_GATE_INIT = -3.0  # sigmoid(-3) ≈ 0.05: a point barely follows a hand until the data says it does
CONTACT_MOVE_SCALE = 0.06  # metres: the control's per-frame wrist limit, so the move feature is O(1)


def _unit(v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """v / |v| along the last axis (0 where v is 0)."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


@dataclass
class State:
    """A batch of RSSM states. ``z`` is one-hot (B, stoch, classes); ``probs`` the distribution it came from;
    ``b`` (B, BODY_DIM) the body part (None for models without one)."""

    h: torch.Tensor
    z: torch.Tensor
    probs: torch.Tensor
    b: torch.Tensor | None = None

    def feat(self) -> torch.Tensor:
        parts = [self.h, self.z.flatten(-2)] + ([self.b] if self.b is not None else [])
        return torch.cat(parts, -1)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "State":
        """The same function on every part (index, slice, expand, flatten …): one place that knows the parts."""
        return State(fn(self.h), fn(self.z), fn(self.probs), None if self.b is None else fn(self.b))

    def last(self) -> "State":
        """(B, T, ·) → the states at the last time step (B, ·)."""
        return self.map(lambda t: t[:, -1])


def _join(states: list[State], op: Callable[..., torch.Tensor], dim: int) -> State:
    parts = [op([getattr(s, k) for s in states], dim) if getattr(states[0], k) is not None else None for k in FIELDS]
    return State(*parts)


def stack_states(states: list[State], dim: int = 1) -> State:
    return _join(states, torch.stack, dim)


def cat_states(states: list[State], dim: int = 0) -> State:
    return _join(states, torch.cat, dim)


class RSSM(nn.Module):
    def __init__(self, cfg: Config, embed_size: int):
        super().__init__()
        self.cfg = cfg
        body = cfg.body_size
        self.img_in = nn.Sequential(nn.Linear(cfg.stoch_size + body + cfg.action_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU())
        self.gru = nn.GRUCell(cfg.hidden, cfg.deter)
        self.prior_net = nn.Sequential(nn.Linear(cfg.deter, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
                                       nn.Linear(cfg.hidden, cfg.stoch_size))
        self.post_net = nn.Sequential(nn.Linear(cfg.deter + embed_size, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
                                      nn.Linear(cfg.hidden, cfg.stoch_size))
        # A learned initial h (DreamerV3): the first frame of a clip has no history.
        self.h0 = nn.Parameter(torch.zeros(cfg.deter))
        if body:
            # The body's step: a residual on the last value, from the new h, the last value and the action.
            self.body_net = nn.Sequential(nn.Linear(cfg.deter + body + cfg.action_dim, cfg.hidden), nn.LayerNorm(cfg.hidden),
                                          nn.SiLU(), nn.Linear(cfg.hidden, body))
            nn.init.zeros_(self.body_net[-1].weight)  # starts as "the body stays where it was"
            nn.init.zeros_(self.body_net[-1].bias)
            self.b0 = nn.Parameter(torch.zeros(body))  # the first frame's body when it is not sensed
        else:
            self.body_net = None
        self.contact_net = None
        if cfg.contact and cfg.track_points and body:
            # Per (point, hand): [offset wrist − point (3), its length (1), the wrist's move (3), the hand's
            # normalised action, which point (one-hot)] → the gate's logit.
            # With directions: also d·n and d·u (module doc), and three gates out.
            width = 7 + HAND_DIM + cfg.track_points + (2 if cfg.contact_dirs else 0)
            self.contact_net = nn.Sequential(nn.Linear(width, CONTACT_HIDDEN), nn.SiLU(), nn.Linear(CONTACT_HIDDEN, CONTACT_HIDDEN),
                                             nn.SiLU(), nn.Linear(CONTACT_HIDDEN, 3 if cfg.contact_dirs else 1))
            nn.init.zeros_(self.contact_net[-1].weight)
            nn.init.constant_(self.contact_net[-1].bias, CONTACT_GATE_INIT)
        # The dataset's action statistics (the owner, ``WorldModel``, keeps the saved copy and fills these):
        # the RSSM takes normalised actions, the body's kinematics needs them in metres and radians.
        self.register_buffer("act_mean", torch.zeros(cfg.action_dim), persistent=False)
        self.register_buffer("act_std", torch.ones(cfg.action_dim), persistent=False)

    def _dist(self, logits: torch.Tensor) -> torch.Tensor:
        return unimix_probs(logits.reshape(logits.shape[:-1] + (self.cfg.stoch, self.cfg.classes)), self.cfg.unimix)

    def initial_h(self, batch: int) -> torch.Tensor:
        return torch.tanh(self.h0).expand(batch, -1)

    def initial_b(self, batch: int) -> torch.Tensor | None:
        return None if self.body_net is None else self.b0.expand(batch, -1)

    def deter_step(self, prev: State, action: torch.Tensor) -> torch.Tensor:
        parts = [prev.z.flatten(-2)] + ([prev.b] if self.body_net is not None else []) + [action]
        return self.gru(self.img_in(torch.cat(parts, -1)), prev.h)

    def contact_shift(self, b: torch.Tensor, action: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """How far each tracked point moves with the hands (…, P, 3), metres in the head frame of the last step:
        Σ over hands of gate(point, hand) × the wrist's move (module doc). ``action`` normalised, ``raw`` the
        same in metres and radians (the kinematic step has it already)."""
        P = self.cfg.track_points
        pts = b[..., BODY_DIM:BODY_DIM + 3 * P].unflatten(-1, (P, 3))  # (…, P, 3) / EGO_POS_SCALE
        which = torch.eye(P, dtype=b.dtype, device=b.device).expand(b.shape[:-1] + (P, P))
        dirs = self.cfg.contact_dirs
        if dirs:  # u: each point toward the mean of the others (its goal, for the task's object)
            others = (pts.sum(-2, keepdim=True) - pts) / max(P - 1, 1)
            u = _unit(others - pts) if P > 1 else torch.zeros_like(pts)
        shift = 0.0
        for side in (0, 1):
            wrist = b[..., 3 * side:3 * side + 3].unsqueeze(-2)
            d = raw[..., hand_slice(side)][..., 0:3].unsqueeze(-2).expand(pts.shape)  # metres, the last step's head frame
            off = wrist - pts
            parts = [off, off.norm(dim=-1, keepdim=True), d / CONTACT_MOVE_SCALE,
                     action[..., hand_slice(side)].unsqueeze(-2).expand(off.shape[:-1] + (HAND_DIM,)), which]
            if dirs:
                n = _unit(-off)  # wrist → point
                dn, du = (d * n).sum(-1, keepdim=True), (d * u).sum(-1, keepdim=True)
                parts += [dn / CONTACT_MOVE_SCALE, du / CONTACT_MOVE_SCALE]
            gate = torch.sigmoid(self.contact_net(torch.cat(parts, -1)))  # (…, P, 1 or 3)
            if dirs:
                shift = shift + gate[..., 0:1] * d + gate[..., 1:2] * dn.clamp_min(0.0) * n + gate[..., 2:3] * du * u
            else:
                shift = shift + gate * d
        return shift

    def kinematics(self, b: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The body (…, 9 + 3·points) after a normalised action (…, A), as the action defines the motion (module doc)."""
        if self.cfg.action_blind:
            return b
        raw = action * self.act_std + self.act_mean
        shift = self.contact_shift(b, action, raw) if self.contact_net is not None else None
        head = raw[..., HEAD]
        rot = axis_angle_matrix(head[..., 3:6])
        out = []
        for side in (0, 1):
            d = raw[..., hand_slice(side)][..., 0:3]
            p = b[..., 3 * side:3 * side + 3] * EGO_POS_SCALE + d - head[..., 0:3]
            out.append((p.unsqueeze(-2) @ rot).squeeze(-2) / EGO_POS_SCALE)  # row vector · R = (Rᵀ p)ᵀ
        out.append((b[..., 6:9].unsqueeze(-2) @ rot).squeeze(-2))
        for k in range(self.cfg.track_points):  # a tracked point stays where it is in the world until touched
            c = BODY_DIM + 3 * k
            p = b[..., c:c + 3] * EGO_POS_SCALE
            if shift is not None:  # moved by the hands first, in the last step's head frame (contact_shift)
                p = p + shift[..., k, :]
            p = p - head[..., 0:3]
            out.append((p.unsqueeze(-2) @ rot).squeeze(-2) / EGO_POS_SCALE)
        return torch.cat(out, -1)

    def body_step(self, prev: State, h: torch.Tensor, action: torch.Tensor) -> torch.Tensor | None:
        """The predicted body after ``action`` from ``prev`` (whose successor's h is ``h``)."""
        if self.body_net is None:
            return None
        residual = self.body_net(torch.cat([h, prev.b, action], -1))
        if self.contact_net is not None:  # tracked points move by the contact step alone (module doc)
            residual = torch.cat([residual[..., :BODY_DIM], torch.zeros_like(residual[..., BODY_DIM:])], -1)
        return self.kinematics(prev.b, action) + residual

    def prior(self, h: torch.Tensor) -> torch.Tensor:
        return self._dist(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return self._dist(self.post_net(torch.cat([h, embed], -1)))

    @staticmethod
    def sensed(pred: torch.Tensor | None, body: torch.Tensor | None, known: torch.Tensor | None) -> torch.Tensor | None:
        """The body part of a filtered state: the sensed value (B, D) where ``known`` (B,) or (B, D), else the prediction."""
        if pred is None or body is None:
            return pred
        return torch.where(known[:, None] if known.dim() == 1 else known, body, pred)

    def obs_step(self, prev: State | None, action: torch.Tensor | None, embed: torch.Tensor,
                 body: torch.Tensor | None = None, known: torch.Tensor | None = None, noise: Noise | None = None,
                 sample: bool = True) -> tuple[State, torch.Tensor, torch.Tensor | None]:
        """One filter step: (posterior state, prior probs, the body as predicted before sensing it).

        ``prev`` None starts a clip (learned h0, b0). ``body`` (B, D) what the body sensed, ``known`` (B,) where.
        """
        B = embed.shape[0]
        if prev is None:
            h, b_pred = self.initial_h(B), self.initial_b(B)
        else:
            h = self.deter_step(prev, action)
            b_pred = self.body_step(prev, h, action)
        prior = self.prior(h)
        post = self.posterior(h, embed)
        z = sample_onehot(post, noise) if sample else mode_onehot(post)
        return State(h, z, post, self.sensed(b_pred, body, known)), prior, b_pred

    def observe(self, embed: torch.Tensor, action: torch.Tensor, noise: Noise | None = None, sample: bool = True,
                body: torch.Tensor | None = None, known: torch.Tensor | None = None
                ) -> tuple[State, torch.Tensor]:
        """Filter a clip: embeddings (B, T, E) and actions (B, T, A) [and the sensed body (B, T, D), ``known``
        (B, T)] → posterior states (B, T, ·) and prior probs. The posterior states' ``b`` is the sensed body where
        known; ``observe_body`` also returns the predictions it replaced (the body's training target).

        ``action[:, t]`` is what happened between frames t and t+1, so frame t+1's step uses it;
        the last action of the clip is not used.
        """
        posts, priors, _ = self.observe_body(embed, action, noise, sample, body, known)
        return posts, priors

    def observe_body(self, embed: torch.Tensor, action: torch.Tensor, noise: Noise | None = None, sample: bool = True,
                     body: torch.Tensor | None = None, known: torch.Tensor | None = None
                     ) -> tuple[State, torch.Tensor, torch.Tensor | None]:
        T = embed.shape[1]
        posts, priors, preds = [], [], []
        state: State | None = None
        for t in range(T):
            state, prior, b_pred = self.obs_step(state, action[:, t - 1] if t else None, embed[:, t],
                                                 None if body is None else body[:, t],
                                                 None if known is None else known[:, t], noise, sample)
            posts.append(state)
            priors.append(prior)
            preds.append(b_pred)
        return stack_states(posts), torch.stack(priors, 1), None if preds[0] is None else torch.stack(preds, 1)

    def img_step(self, prev: State, action: torch.Tensor, noise: Noise | None = None, sample: bool = True) -> State:
        """One imagined step: the next state from the prior, without an image."""
        h = self.deter_step(prev, action)
        probs = self.prior(h)
        z = sample_onehot(probs, noise) if sample else mode_onehot(probs)
        return State(h, z, probs, self.body_step(prev, h, action))

    def imagine(self, start: State, actions: torch.Tensor, noise: Noise | None = None, sample: bool = True) -> State:
        """Open-loop rollout from ``start`` (B, ·) under actions (B, H, A) → states (B, H, ·) at t+1…t+H."""
        out, state = [], start
        for k in range(actions.shape[1]):
            state = self.img_step(state, actions[:, k], noise, sample)
            out.append(state)
        return stack_states(out)
