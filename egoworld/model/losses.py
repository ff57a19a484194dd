"""The world-model loss: one-step ELBO with KL balancing and free bits, plus the open-loop loss.

One-step terms (per frame, averaged over batch and time):
  image   squared error summed over pixels (images in [0, 1])
  state   symlog squared error of the proprioceptive state
  body    squared error of the body part's predicted step (``body_state``: b_t predicted from t-1, before sensing)
  ego     squared error of its egocentric part (wrists in the head frame, gravity; ``egocentric``)
  scene   squared error of the frame at ``scene_size`` decoded from the latent alone (no reference)
  reward  twohot cross-entropy over symlog bins (only where the clip has a reward label)
  cont    Bernoulli log-loss of "the episode continues"
  dyn     max(free, KL(sg(q) || p))   trains the prior toward the posterior
  rep     max(free, KL(q || sg(p)))   keeps the posterior predictable (smaller weight)

Open-loop (multi-step) terms: every ``overshoot_stride``-th posterior state is rolled forward
``overshoot`` steps with the prior alone, feeding back its own samples — exactly what happens at
prediction time. At each step d the rollout is pulled toward the posterior of frame t+d
(KL with free bits, latent overshooting), the state head and the body part are scored against frame t+d; the
final open-loop state (d = overshoot) is decoded, and its scene drawn, and compared with frame
t+k (decoded-frame loss at k steps — decoding every d costs as much as the one-step image loss again on a CPU).
One-step training never sees its own compounding errors; this does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from egoworld.model.nets import Noise, categorical_kl, egocentric, sample_onehot, symlog, twohot
from egoworld.model.rssm import State
from egoworld.model.world_model import WorldModel


def _image_loss(pred: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels → (leading dims)."""
    target = image.float() / 255.0
    return (pred - target).square().flatten(-3).sum(-1)


def _scene_target(model: WorldModel, image: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., 3, S, S) → the scene head's target: area-averaged to ``scene_size``, still in 0…255
    (the units ``_image_loss`` takes its target in)."""
    small = F.adaptive_avg_pool2d(image.reshape((-1,) + image.shape[-3:]).float(), model.cfg.scene_size)
    return small.reshape(image.shape[:-3] + small.shape[1:])


def _reward_ce(model: WorldModel, feat: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Twohot cross-entropy of every reward head, summed over heads, averaged over the weighted frames."""
    ce = sum(-(target * h(feat).log_softmax(-1)).sum(-1) for h in model.reward_heads())
    return (ce * weight).sum() / weight.sum().clamp_min(1)


def _free(kl: torch.Tensor, free: float) -> torch.Tensor:
    return kl.clamp_min(free) if free > 0 else kl


def world_model_loss(model: WorldModel, batch: dict[str, torch.Tensor], noise: Noise | None = None
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and a dict of its (detached) parts for a batch of clips."""
    cfg = model.cfg
    image, action = batch["image"], batch["action"]
    B, T = image.shape[:2]
    valid = batch.get("action_valid")
    act = model.norm_action(action, valid)
    present = None
    if cfg.body_state and cfg.body_drop > 0 and noise is not None:
        present = noise.uniform((B, T), image.device) >= cfg.body_drop  # hide the sensed body on some frames
    sensed, known = model.sense(batch["state"], (B, T), present, batch.get("objects"))
    posts, priors, body_pred = model.rssm.observe_body(model.embed(image), act, noise, body=sensed, known=known)
    feat = posts.feat()

    m: dict[str, torch.Tensor] = {}
    # Frames are decoded relative to the clip's first frame (what a rollout is decoded against is
    # its last real frame), so frame 0 itself would only teach copying: it is left out.
    ref = model.reference(image[:, 0], feat[:, 0])
    rot = model.head_rotation(action[:, :T - 1], None if valid is None else valid[:, :T - 1])
    m["image"] = _image_loss(model.decode(feat[:, 1:], ref, rot), image[:, 1:]).mean()
    m["state"] = (model.state_head(feat) - symlog(batch["state"])).square().sum(-1).mean()
    use_ego = model.ego_head is not None
    ego = egocentric(batch["state"])  # the ego head's target and the body part's: wrists in the head frame, gravity
    if use_ego:
        m["ego"] = (model.ego_head(feat) - ego).square().sum(-1).mean()
    use_scene = model.scene_head is not None
    if use_scene:
        m["scene"] = _image_loss(model.scene(feat), _scene_target(model, image)).mean()
    rew_target = has_reward = None  # twohot targets and frame weights, shared with the open-loop reward loss
    if "reward" in batch:
        has_reward = batch.get("has_reward", torch.ones(B, dtype=torch.bool, device=image.device))
        has_reward = (has_reward if has_reward.dim() == 2 else has_reward[:, None].expand(B, T)).to(feat.dtype)
        rew_target = twohot(symlog(batch["reward"].float()), model.reward_bins)
        m["reward"] = _reward_ce(model, feat, rew_target, has_reward)
    if "done" in batch:
        cont = 1.0 - batch["done"].float()
        m["cont"] = F.binary_cross_entropy_with_logits(model.cont_head(feat).squeeze(-1), cont)
    body_tgt, body_w = model.body_target(batch["state"], batch.get("objects"))
    if body_pred is not None:  # the body as predicted from the last state and action, before it was sensed
        m["body"] = ((body_pred - body_tgt).square() * body_w).sum(-1).mean()
    m["dyn"] = _free(categorical_kl(posts.probs.detach(), priors), cfg.free_nats).mean()
    m["rep"] = _free(categorical_kl(posts.probs, priors.detach()), cfg.free_nats).mean()
    total = (cfg.image_scale * m["image"] + cfg.state_scale * m["state"] + cfg.dyn_scale * m["dyn"]
             + cfg.rep_scale * m["rep"] + cfg.body_scale * m.get("body", 0.0) + cfg.ego_scale * m.get("ego", 0.0) + cfg.scene_scale * m.get("scene", 0.0)
             + cfg.reward_scale * m.get("reward", 0.0) + cfg.cont_scale * m.get("cont", 0.0))

    K = min(cfg.overshoot, T - 1)
    if K > 0:
        starts = torch.arange(0, T - K, cfg.overshoot_stride, device=image.device)
        S = len(starts)
        state = posts.map(lambda t: t[:, starts].flatten(0, 1))
        kl_sum = st_sum = ego_sum = body_sum = rew_sum = cont_sum = 0.0
        ol_reward = cfg.overshoot_reward_scale > 0 and rew_target is not None
        for d in range(1, K + 1):
            a = act[:, starts + d - 1].flatten(0, 1)
            h = model.rssm.deter_step(state, a)
            probs = model.rssm.prior(h)
            z = sample_onehot(probs.reshape(B, S, cfg.stoch, cfg.classes), noise).flatten(0, 1)
            state = State(h, z, probs, model.rssm.body_step(state, h, a))
            if state.b is not None:
                idx = starts + d
                body_sum = body_sum + ((state.b - body_tgt[:, idx].flatten(0, 1)).square() * body_w[:, idx].flatten(0, 1)).sum(-1).mean()
            target = posts.probs[:, starts + d].flatten(0, 1).detach()
            kl_sum = kl_sum + _free(categorical_kl(target, probs), cfg.free_nats).mean()
            f = state.feat()
            st_sum = st_sum + (model.state_head(f) - symlog(batch["state"][:, starts + d].flatten(0, 1))).square().sum(-1).mean()
            if use_ego:
                ego_sum = ego_sum + (model.ego_head(f) - ego[:, starts + d].flatten(0, 1)).square().sum(-1).mean()
            if ol_reward:  # the heads a planner reads, on the states it reads them from: imagined ones
                idx = starts + d
                rew_sum = rew_sum + _reward_ce(model, f, rew_target[:, idx].flatten(0, 1), has_reward[:, idx].flatten(0, 1))
                if "done" in batch:
                    cont_sum = cont_sum + F.binary_cross_entropy_with_logits(
                        model.cont_head(f).squeeze(-1), 1.0 - batch["done"][:, idx].flatten(0, 1).float())
        ol_ref = model.reference(image[:, starts].flatten(0, 1), feat[:, starts].flatten(0, 1))
        span = starts[:, None] + torch.arange(K, device=image.device)  # actions s … s+K-1
        ol_valid = None if valid is None else valid[:, span].flatten(0, 1)
        ol_rot = model.head_rotation(action[:, span].flatten(0, 1), ol_valid)
        ol_rot = None if ol_rot is None else ol_rot[:, -1:]
        m["ol_image"] = _image_loss(model.decode(f[:, None], ol_ref, ol_rot)[:, 0], image[:, starts + K].flatten(0, 1)).mean()
        m["ol_kl"], m["ol_state"] = kl_sum / K, st_sum / K
        if body_pred is not None:
            m["ol_body"] = body_sum / K
        if use_ego:
            m["ol_ego"] = ego_sum / K
        if ol_reward:
            m["ol_reward"] = rew_sum / K
            if "done" in batch:
                m["ol_cont"] = cont_sum / K
        if use_scene:
            m["ol_scene"] = _image_loss(model.scene(f), _scene_target(model, image[:, starts + K].flatten(0, 1))).mean()
        total = (total + cfg.overshoot_kl_scale * m["ol_kl"]
                 + cfg.overshoot_image_scale * (m["ol_image"] + cfg.state_scale * m["ol_state"]
                                                + cfg.ego_scale * m.get("ol_ego", 0.0)
                                                + cfg.body_scale * m.get("ol_body", 0.0)
                                                + cfg.scene_scale * m.get("ol_scene", 0.0))
                 + cfg.overshoot_reward_scale * (cfg.reward_scale * m.get("ol_reward", 0.0) + cfg.cont_scale * m.get("ol_cont", 0.0)))
    metrics = {k: float(v.detach()) for k, v in m.items()}
    metrics["loss"] = float(total.detach())
    return total, metrics
