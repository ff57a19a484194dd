"""An actor-critic trained purely in imagination (DreamerV3, Hafner et al. 2023, section "Critic/Actor learning").

The world model is frozen. From posterior states of real clips of one task (the model is per-data,
not per-task: the task is chosen by where the dreams start), the actor imagines ``horizon`` steps
through the model's prior; the reward is the change of the reward head's task progress (what the
simulator's reward is, in the model's words), the discount is ``gamma`` times the continuation head.

* actor: a Gaussian over the 20-D control normalised to [-1, 1] per dimension (mean through tanh,
  std in [min_std, max_std]); samples are clipped to the box when executed. Trained with REINFORCE on
  λ-return advantages (DreamerV3 uses REINFORCE for continuous actions too), plus an entropy bonus.
* critic: twohot classification over symlog bins with a slow (EMA) copy; it regresses the λ-returns
  (bootstrapped from the slow critic) and is regularised toward the slow critic's predictions.
* return normalisation: advantages are divided by max(1, S), S an EMA of the 95th − 5th percentile
  of the λ-returns — large returns are scaled down, small ones are never blown up (so noise is not).

A policy is saved as ``policy.safetensors`` (actor, critic, slow critic) + ``policy.json`` (its config,
the model checkpoint and its hash, what it was trained on), never pickle.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.actions import CONTROL_DIM, CONTROL_HIGH, CONTROL_LOW
from egoworld.imagine.dream import (
    Starts,
    WindowReader,
    actions_from_controls,
    check_progress,
    dream_continue,
    dream_progress,
    estimate_hand_scale,
    filter_windows,
    select_episodes,
)
from egoworld.model import Noise, State, WorldModel
from egoworld.model.nets import mlp, symexp, symlog, twohot
from egoworld.train.optim import Adam

POLICY_FORMAT = "egoworld-policy/1"


@dataclass
class ACConfig:
    """Every hyper-parameter of imagination training (CLI options map onto these fields)."""

    task: str = ""
    progress: str = "head"  # what the dream's reward reads: "head" (the reward head) or "track" (the tracked points: plan.track_progress)
    horizon: int = 15  # imagined steps per start
    batch: int = 64  # start states per update
    gamma: float = 0.99  # per frame (30 fps: an effective horizon of ~3 s)
    lam: float = 0.95
    entropy: float = 3e-4
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    adam_eps: float = 1e-5
    grad_clip: float = 100.0
    hidden: int = 256
    layers: int = 2
    min_std: float = 0.1
    max_std: float = 1.0
    critic_bins: int = 41
    critic_range: float = 8.0  # bins span symlog(return) in ±critic_range
    slow_rate: float = 0.02  # slow critic: EMA rate per update
    slow_reg: float = 1.0  # weight of the pull toward the slow critic
    retnorm_decay: float = 0.99
    retnorm_lo: float = 0.05
    retnorm_hi: float = 0.95
    reward_scale: float = 100.0  # progress is [0, 1]: reward in percentage points of progress per frame
    sample_latents: bool = True  # dream with sampled latents (DreamerV3), not their modes
    clip_len: int = 16  # frames per real clip whose posterior states seed the dreams
    max_clips: int = 96
    burn_in: int = 3  # skip the first posterior states of a clip (little history yet)
    split: str = "train"
    steps: int = 0  # 0: as many as fit in `minutes`
    minutes: float = 5.0
    snapshots: int = 4  # actor copies kept along training (for the policy-evaluation ranking)
    log_every: int = 50
    seed: int = 0
    threads: int = 1

    def replace(self, **kw: Any) -> "ACConfig":
        return ACConfig(**{**asdict(self), **{k: v for k, v in kw.items() if v is not None}})


_LOW = torch.tensor(CONTROL_LOW, dtype=torch.float32)
_HIGH = torch.tensor(CONTROL_HIGH, dtype=torch.float32)


def to_control(u: torch.Tensor) -> torch.Tensor:
    """Normalised action u ∈ [-1, 1]^20 → control within (CONTROL_LOW, CONTROL_HIGH)."""
    return _LOW + (u.clamp(-1, 1) + 1) * 0.5 * (_HIGH - _LOW)


def from_control(control: torch.Tensor) -> torch.Tensor:
    return (2 * (control - _LOW) / (_HIGH - _LOW) - 1).clamp(-1, 1)


class Actor(nn.Module):
    """Feature → Gaussian over the normalised control (independent dims)."""

    def __init__(self, feat: int, cfg: ACConfig):
        super().__init__()
        self.net = mlp(feat, cfg.hidden, 2 * CONTROL_DIM, cfg.layers)
        with torch.no_grad():  # DreamerV3's outscale 0.01: the untrained actor's mean action is ~0 (hold still)
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()
        self.min_std, self.max_std = cfg.min_std, cfg.max_std

    def dist(self, feat: torch.Tensor) -> torch.distributions.Normal:
        mean, raw = self.net(feat).chunk(2, -1)
        std = (self.max_std - self.min_std) * torch.sigmoid(raw + 2.0) + self.min_std
        return torch.distributions.Normal(torch.tanh(mean), std)

    @torch.no_grad()
    def control(self, feat: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        d = self.dist(feat)
        u = d.mean if deterministic else d.mean + d.stddev * torch.randn(d.mean.shape, generator=generator)
        return to_control(u)


class Critic(nn.Module):
    """Feature → distribution over symlog(return) bins (twohot); ``value`` is its symexp mean."""

    def __init__(self, feat: int, cfg: ACConfig):
        super().__init__()
        self.net = mlp(feat, cfg.hidden, cfg.critic_bins, cfg.layers)
        nn.init.zeros_(self.net[-1].weight)  # DreamerV3: start value predictions at 0
        nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("bins", torch.linspace(-cfg.critic_range, cfg.critic_range, cfg.critic_bins))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.net(feat)

    def value(self, feat: torch.Tensor) -> torch.Tensor:
        return symexp((self.net(feat).softmax(-1) * self.bins).sum(-1))


def lambda_returns(reward: torch.Tensor, disc: torch.Tensor, value: torch.Tensor, lam: float) -> torch.Tensor:
    """R_t = r_t + d_t ((1 − λ) v_{t+1} + λ R_{t+1}), R_H = v_H; reward/disc (H, B), value (H+1, B) → (H, B)."""
    H = reward.shape[0]
    out = torch.empty_like(reward)
    nxt = value[H]
    for t in reversed(range(H)):
        nxt = reward[t] + disc[t] * ((1 - lam) * value[t + 1] + lam * nxt)
        out[t] = nxt
    return out


@dataclass
class StartPool:
    """Posterior states of real clips (where dreams begin) and the hand scale of each one's person."""

    state: State
    hand_scale: np.ndarray
    episodes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.state.h.shape[0]


def start_pool(model: WorldModel, data: str | Path, task: str | None, cfg: ACConfig) -> StartPool:
    """Filter up to ``max_clips`` clips of ``task`` episodes; every posterior state after ``burn_in`` is a start."""
    store, rows = select_episodes(data, task, cfg.split)
    rng = np.random.default_rng([cfg.seed, 5])
    T = cfg.clip_len
    windows = [(int(r["episode_index"]), s) for r in rows for s in range(0, int(r["length"]) - T + 1, max(1, T // 2))]
    if not windows:
        raise ValueError(f"{store.root}: no {task} episode is {T} frames long")
    if len(windows) > cfg.max_clips:
        windows = [windows[i] for i in sorted(rng.choice(len(windows), cfg.max_clips, replace=False))]
    reader = WindowReader(store, model.cfg.image_size)
    imgs, acts, valid, states, objects, scales = [], [], [], [], [], []
    for ep, s in windows:
        cols = reader.episode(ep)
        imgs.append(reader.frames(ep, s, s + T))
        acts.append(cols["action"][s:s + T])
        states.append(cols["state"][s:s + T])
        objects.append(cols["objects"][s:s + T])
        valid.append(cols["action_valid"][s:s + T])
        scales.append(estimate_hand_scale(cols["action"], cols["action_valid"]))
    reader.close()
    posts = filter_windows(model, torch.from_numpy(np.stack(imgs)), torch.from_numpy(np.stack(acts)),
                           torch.from_numpy(np.stack(valid)), torch.from_numpy(np.stack(states)),
                           objects=torch.from_numpy(np.stack(objects)))
    b = min(cfg.burn_in, T - 1)
    state = posts.map(lambda t: t[:, b:].flatten(0, 1).contiguous())
    scale = np.repeat(np.stack(scales), T - b, axis=0)
    return StartPool(state, scale, sorted({str(r["session_id"]) for r in rows}))


def starts_as_pool(starts: Starts) -> StartPool:
    return StartPool(starts.filtered, starts.hand_scale, sorted({r["session_id"] for r in starts.rows}))


@torch.no_grad()
def imagine(model: WorldModel, actor: Actor, start: State, hand_scale: np.ndarray, horizon: int,
            generator: torch.Generator, sample_latents: bool = True) -> dict[str, torch.Tensor]:
    """Roll the actor through the prior: features (H+1, B, F), normalised actions u (H, B, 20)."""
    feats, us, state = [start.feat()], [], start
    noise = Noise(generator) if sample_latents else None
    for _ in range(horizon):
        d = actor.dist(feats[-1])
        u = d.mean + d.stddev * torch.randn(d.mean.shape, generator=generator)
        act = torch.from_numpy(actions_from_controls(to_control(u).numpy(), hand_scale).astype(np.float32))
        state = model.rssm.img_step(state, model.norm_action(act), noise, sample=sample_latents)
        feats.append(state.feat())
        us.append(u)
    return {"feat": torch.stack(feats), "u": torch.stack(us)}


class ActorCritic:
    """The learner: actor, critic, slow critic, their optimisers and the return-scale EMA."""

    def __init__(self, feat_size: int, cfg: ACConfig):
        self.cfg = cfg
        self.actor = Actor(feat_size, cfg)
        self.critic = Critic(feat_size, cfg)
        self.slow = copy.deepcopy(self.critic).requires_grad_(False)
        # egoworld's own Adam: torch.optim.Adam imports torch._dynamo (seconds per process)
        self.opt_a = Adam(self.actor.parameters(), lr=cfg.actor_lr, eps=cfg.adam_eps)
        self.opt_c = Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=cfg.adam_eps)
        self.scale: float | None = None  # return scale S (EMA)

    def update(self, model: WorldModel, start: State, hand_scale: np.ndarray, generator: torch.Generator) -> dict[str, float]:
        cfg = self.cfg
        roll = imagine(model, self.actor, start, hand_scale, cfg.horizon, generator, cfg.sample_latents)
        feat, u = roll["feat"], roll["u"]
        with torch.no_grad():
            progress = dream_progress(model, feat, feat[0], cfg.progress)  # (H+1, B)
            reward = (progress[1:] - progress[:-1]) * cfg.reward_scale
            disc = cfg.gamma * dream_continue(model, feat[1:], cfg.progress, cfg.task)
            v_slow = self.slow.value(feat)
            ret = lambda_returns(reward, disc, v_slow, cfg.lam)
            weight = torch.cumprod(torch.cat([torch.ones_like(disc[:1]), disc[:-1]]), 0)
            lo, hi = torch.quantile(ret.flatten(), torch.tensor([cfg.retnorm_lo, cfg.retnorm_hi]))
            spread = float(hi - lo)
            self.scale = spread if self.scale is None else cfg.retnorm_decay * self.scale + (1 - cfg.retnorm_decay) * spread
            value = self.critic.value(feat[:-1])
            adv = (ret - value) / max(1.0, self.scale)

        logits = self.critic(feat[:-1])
        logp = logits.log_softmax(-1)
        bins = self.critic.bins
        ce_ret = -(twohot(symlog(ret), bins) * logp).sum(-1)
        ce_slow = -(twohot(symlog(v_slow[:-1]), bins) * logp).sum(-1)
        loss_c = (weight * (ce_ret + cfg.slow_reg * ce_slow)).mean()
        self.opt_c.zero_grad()
        loss_c.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.opt_c.step()

        dist = self.actor.dist(feat[:-1])
        lp = dist.log_prob(u).sum(-1)
        ent = dist.entropy().sum(-1)
        loss_a = -(weight * (lp * adv + cfg.entropy * ent)).mean()
        self.opt_a.zero_grad()
        loss_a.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_clip)
        self.opt_a.step()

        with torch.no_grad():
            for s, p in zip(self.slow.parameters(), self.critic.parameters()):
                s.lerp_(p, cfg.slow_rate)
        return {"actor_loss": float(loss_a.detach()), "critic_loss": float(loss_c.detach()), "return": float(ret[0].mean()),
                "dream_progress_gain": float((progress[-1] - progress[0]).mean()), "value": float(value[0].mean()),
                "adv_abs": float(adv.abs().mean()), "entropy": float(ent.detach().mean()), "return_scale": float(self.scale),
                "std": float(dist.stddev.detach().mean())}


def train_actor_critic(model: WorldModel, pool: StartPool, cfg: ACConfig,
                       on_snapshot: Callable[[str, Actor, int], None] | None = None,
                       echo: Callable[[str], None] = print) -> tuple[ActorCritic, list[dict]]:
    """Train in imagination for ``cfg.steps`` updates (or ``cfg.minutes``); returns the learner and its log.

    ``on_snapshot(name, actor, step)`` is called for the untrained actor, ``cfg.snapshots - 2`` copies in
    between and the final one (names ``step_XXXXXX``): the policies whose dream and real returns are ranked.
    """
    check_progress(model, cfg.progress)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model.eval().requires_grad_(False)
    ac = ActorCritic(model.cfg.feat_size, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    log: list[dict] = []
    t0 = time.time()
    budget = cfg.minutes * 60.0
    n_snap = max(2, cfg.snapshots)
    marks = [k / (n_snap - 1) for k in range(1, n_snap - 1)]  # fractions of the run between start and end
    if on_snapshot:
        on_snapshot("step_000000", ac.actor, 0)
    step = 0
    while True:
        frac = step / cfg.steps if cfg.steps else (time.time() - t0) / budget
        if frac >= 1.0:
            break
        while marks and frac >= marks[0]:
            marks.pop(0)
            if on_snapshot:
                on_snapshot(f"step_{step:06d}", ac.actor, step)
        idx = torch.randint(len(pool), (cfg.batch,), generator=gen)
        start = pool.state.map(lambda t: t[idx])
        m = ac.update(model, start, pool.hand_scale[idx.numpy()], gen)
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            m = dict(m, step=step, time_s=round(time.time() - t0, 1))
            log.append(m)
            echo(f"step {step}: return {m['return']:.3f}  dream progress gain {m['dream_progress_gain']:+.4f}  "
                 f"entropy {m['entropy']:.1f}  S {m['return_scale']:.3f}")
    if on_snapshot:
        on_snapshot(f"step_{step:06d}", ac.actor, step)
    log.append({"step": step, "time_s": round(time.time() - t0, 1), "final": True})
    return ac, log


# ---------------------------------------------------------------- files


def save_policy(out: str | Path, ac: ActorCritic, info: dict[str, Any]) -> Path:
    """``out/policy.safetensors`` (actor., critic., slow. prefixes) + ``out/policy.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = {f"{name}.{k}": v for name, mod in (("actor", ac.actor), ("critic", ac.critic), ("slow", ac.slow))
               for k, v in mod.state_dict().items()}
    runs.save_weights(out / "policy.safetensors", weights, {"format": "pt", "kind": POLICY_FORMAT})
    write_json(out / "policy.json", {"format": POLICY_FORMAT, "ac": asdict(ac.cfg), **info})
    return out


def load_policy(path: str | Path, snapshot: str | None = None) -> tuple[Actor, dict[str, Any]]:
    """The actor of a saved policy (``snapshot``: one of ``snapshots/*.safetensors`` instead) and its policy.json."""
    path = Path(path)
    meta_path = path / "policy.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing — train a policy with `egoworld dream RUN --task T --out {path}`")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != POLICY_FORMAT:
        raise ValueError(f"{meta_path}: format {meta.get('format')!r}, expected {POLICY_FORMAT!r}")
    cfg = ACConfig(**meta["ac"])
    actor = Actor(int(meta["feat_size"]), cfg)
    if snapshot is None:
        w = runs.load_weights(path / "policy.safetensors")
        actor.load_state_dict({k[len("actor."):]: v for k, v in w.items() if k.startswith("actor.")})
    else:
        actor.load_state_dict(runs.load_weights(path / "snapshots" / f"{snapshot}.safetensors"))
    return actor.eval(), meta

