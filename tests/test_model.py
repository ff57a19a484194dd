"""The world model on its own: overfitting, the loss parts, checkpoints as safetensors, action use."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from egoworld.actions import ACTION_DIM
from egoworld.model import Noise, WorldModel, preset, world_model_loss
from egoworld.model.config import Config
from egoworld.model.nets import categorical_kl, egocentric, sample_onehot, symexp, symlog, twohot, unimix_probs
from egoworld.train.data import collate
from egoworld.train.synthetic import SyntheticClips

torch.set_num_threads(1)  # tiny tensors: one thread is faster than two fighting over a busy machine


def tiny(**kw):
    base = dict(image_size=32, deter=64, hidden=64, cnn_depth=8, stoch=8, classes=8, seq_len=12, overshoot=3,
                overshoot_stride=3, reward_bins=21, scene_scale=1.0, scene_size=16)
    return preset("tiny", **(base | kw))


def psnr(pred: torch.Tensor, target_u8: torch.Tensor) -> torch.Tensor:
    mse = (pred - target_u8.float() / 255).square().flatten(-3).mean(-1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def test_symlog_twohot_unimix():
    x = torch.tensor([-100.0, -1.0, 0.0, 0.5, 1e3])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    bins = torch.linspace(-5, 5, 11)
    th = twohot(torch.tensor([0.25, -5.0, 9.0]), bins)
    assert torch.allclose(th.sum(-1), torch.ones(3))
    assert torch.allclose((th * bins).sum(-1), torch.tensor([0.25, -5.0, 5.0]))  # exact inside, clipped outside
    p = unimix_probs(torch.tensor([[50.0, -50.0, -50.0, -50.0]]), 0.01)
    assert p.min() >= 0.01 / 4 - 1e-7 and torch.allclose(p.sum(-1), torch.ones(1))
    q = unimix_probs(torch.zeros(1, 4), 0.01)
    assert categorical_kl(p[:, None], q[:, None]) > 0 and categorical_kl(q[:, None], q[:, None]).abs() < 1e-6


def test_sampling_follows_probs_and_passes_gradients():
    logits = torch.tensor([[[2.0, 0.0, -1.0]]], requires_grad=True)
    probs = unimix_probs(logits, 0.0)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_onehot(probs, Noise(g, 1)) for _ in range(4000)]).squeeze()
    assert torch.allclose(draws.mean(0), probs.detach().squeeze(), atol=0.03)
    (sample_onehot(probs, Noise(g, 1)) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0  # straight-through


def test_noise_slices_match_the_global_batch():
    """Two ranks drawing slices of the global batch's noise see exactly what one process sees."""
    full = Noise(torch.Generator().manual_seed(3), 6, 0).uniform((6, 5), torch.device("cpu"))
    parts = [Noise(torch.Generator().manual_seed(3), 6, off).uniform((3, 5), torch.device("cpu")) for off in (0, 3)]
    assert torch.equal(torch.cat(parts), full)


def test_free_bits_floor_and_loss_parts():
    cfg = tiny()
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg)
    loss, parts = world_model_loss(m, collate(ds, [0, 1]))
    assert torch.isfinite(loss)
    assert parts["dyn"] >= cfg.free_nats - 1e-6 and parts["rep"] >= cfg.free_nats - 1e-6
    assert {"image", "state", "reward", "cont", "ol_kl", "ol_image", "ol_state", "scene", "ol_scene"} <= set(parts)
    _, no_ol = world_model_loss(WorldModel(tiny(overshoot=0)), collate(ds, [0, 1]))
    assert "ol_image" not in no_ol and "ol_scene" not in no_ol


def test_reward_ensemble_heads_disagree_and_learn_on_imagined_states():
    """Several reward heads: each trained (gradients reach every member), the prediction is their mean,
    and with ``overshoot_reward_scale`` the heads are also scored on open-loop (imagined) states."""
    cfg = tiny(reward_heads=3, overshoot_reward_scale=1.0)
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg)
    batch = collate(ds, [0, 1])
    loss, parts = world_model_loss(m, batch)
    assert {"reward", "ol_reward", "ol_cont"} <= set(parts)
    loss.backward()
    assert all(h[-1].weight.grad.abs().sum() > 0 for h in m.reward_heads())
    feat = torch.randn(5, cfg.feat_size)
    members = m.reward_members(feat)
    assert members.shape == (3, 5) and members.std(0).min() > 0  # independently initialised
    torch.testing.assert_close(m.reward(feat), members.mean(0))
    _, single = world_model_loss(WorldModel(tiny()), batch)
    assert "ol_reward" not in single  # off by default: the posterior-only reward loss of earlier runs


def test_configs_written_before_a_head_existed_load_without_it():
    d = dataclasses.asdict(tiny())
    old = {k: v for k, v in d.items() if k not in ("ego_scale", "scene_scale", "body_state", "body_drop", "body_scale",
                                                   "reward_heads", "overshoot_reward_scale")}
    m = WorldModel(Config.from_dict(old))
    assert len(m.reward_heads()) == 1 and m.cfg.overshoot_reward_scale == 0
    assert m.ego_head is None and m.scene_head is None and m.rssm.body_net is None
    assert m.cfg.feat_size == m.cfg.deter + m.cfg.stoch_size  # [h, z], as such runs were trained
    ds = SyntheticClips(episodes=1, T=6, size=32)
    _, parts = world_model_loss(m, collate(ds, [0]))
    assert not {"ego", "scene", "ol_ego", "ol_scene"} & set(parts)
    assert WorldModel(Config.from_dict(d)).scene_head is not None


def test_the_sensed_body_is_part_of_the_state_and_imagined_from_the_actions():
    """Filtered states carry the sensed body exactly (wrists in the head frame, gravity); where it is not
    sensed (None, NaN rows, ``present`` False) it is predicted; imagination moves it with the action;
    the training loss scores the prediction and hides the sensed body on a seeded share of frames."""
    torch.manual_seed(3)
    cfg = tiny(body_drop=0.5)
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg).eval()
    m.set_action_stats(*ds.action_stats())
    b = collate(ds, [0, 1])
    img, act, state = b["image"], b["action"], b["state"]
    posts, _ = m.observe(img, act, sample=False, state=state)
    assert posts.feat().shape[-1] == cfg.feat_size == cfg.deter + cfg.stoch_size + 9
    torch.testing.assert_close(posts.b, egocentric(state))
    blind, _ = m.observe(img, act, sample=False)
    nan = state.clone()
    nan[:, 3:] = float("nan")
    part, _ = m.observe(img, act, sample=False, state=nan)
    torch.testing.assert_close(part.b[:, :3], posts.b[:, :3])
    torch.testing.assert_close(part.b[:, 3], m.rssm.body_step(part.map(lambda t: t[:, 2]), part.h[:, 3],
                                                              m.norm_action(act)[:, 2]))
    assert not torch.equal(part.b[:, 3:], posts.b[:, 3:]) and not torch.equal(blind.b, posts.b)
    # imagination: the body part moves with the action (after a few steps of training the step net is not zero)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(5):
        loss, parts = world_model_loss(m, b, Noise(torch.Generator().manual_seed(0)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {"body", "ol_body"} <= set(parts)
    m.eval()
    _, im_a = m.open_loop(img[:, :6], act[:, :11], state=state)
    other = act.clone()
    other[:, 5:] = -other[:, 5:]
    _, im_b = m.open_loop(img[:, :6], other[:, :11], state=state)
    assert not torch.equal(im_a.b, im_b.b)

    def loss(drop: float, seed: int) -> float:
        m.cfg.body_drop = drop
        with torch.no_grad():
            return float(world_model_loss(m, b, Noise(torch.Generator().manual_seed(seed)))[0])
    assert loss(0.5, 7) == loss(0.5, 7)  # the hidden frames come from the step's noise: reproducible
    assert loss(0.5, 7) != loss(0.0, 7)


@pytest.mark.parametrize("blind", [False, True])
def test_body_kinematics_follow_the_action_definition(blind):
    """The body step before learning: exactly the head-frame wrists and gravity of the next pose of a random
    pose sequence (actions from ``compute_actions``, normalised with arbitrary statistics); the identity when blind."""
    from egoworld.actions import BodyPose, compute_actions

    rng = np.random.default_rng(4)
    n = 12
    qs = rng.normal(size=(n, 3, 4))
    qs /= np.linalg.norm(qs, axis=-1, keepdims=True)
    head_p = np.cumsum(rng.normal(0, 0.02, (n, 3)), 0) + [0, 0, 1.6]
    wrist_p = head_p[:, None] + rng.normal(0, 0.2, (n, 2, 3))
    pose = BodyPose(head_p, qs[:, 0], wrist_p, qs[:, 1:])
    action = torch.from_numpy(compute_actions(pose, np.zeros((n, 2, 21, 3)))).float()
    state = torch.from_numpy(np.concatenate([head_p, qs[:, 0], wrist_p[:, 0], qs[:, 1], wrist_p[:, 1], qs[:, 2]], 1)).float()
    m = WorldModel(tiny(action_blind=blind))
    m.set_action_stats(torch.rand(ACTION_DIM) * 0.01, torch.rand(ACTION_DIM) + 1.0)  # no ±10σ clamp at these jumps
    ego = egocentric(state)
    nxt = m.rssm.kinematics(ego[:-1], m.norm_action(action))
    torch.testing.assert_close(nxt, ego[:-1] if blind else ego[1:], atol=1e-4, rtol=0)
    if not blind:
        assert (ego[1:] - ego[:-1]).abs().max() > 0.05  # the poses did move


def test_tiny_model_overfits_one_clip():
    """A clip seen 70 times is predicted open-loop far better than by copying the last context frame."""
    torch.manual_seed(0)
    cfg = tiny()
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg)
    m.set_action_stats(*ds.action_stats())
    batch = collate(ds, [0])
    opt = torch.optim.Adam(m.parameters(), 2e-3)
    first = None
    for _ in range(70):
        loss, parts = world_model_loss(m, batch)
        first = first or dict(parts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["image"] < 0.2 * first["image"], (first, parts)
    assert parts["ol_image"] < 0.2 * first["image"]
    # the scene head draws the clip's frames from the latent alone (no reference frame to copy)
    assert parts["scene"] < 0.2 * first["scene"] and parts["ol_scene"] < 0.3 * first["scene"], (first, parts)
    m.eval()
    C = 4
    pred, _ = m.open_loop(batch["image"][:, :C], batch["action"][:, :cfg.seq_len - 1])
    real = batch["image"][:, C:]
    assert pred.shape == (1, cfg.seq_len - C, 3, 32, 32)
    model_psnr = psnr(pred, real).mean()
    copy_psnr = psnr(batch["image"][:, C - 1:C].expand_as(real).float() / 255, real).mean()
    print(f"open-loop PSNR {float(model_psnr):.1f} dB vs copy-last {float(copy_psnr):.1f} dB")
    assert model_psnr > 20.0 and model_psnr > copy_psnr + 3.0


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(1)
    cfg = tiny()
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg)
    m.set_action_stats(*ds.action_stats())
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "model.safetensors"))
    m2 = WorldModel(cfg)
    m2.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    assert torch.equal(m2.action_mean, m.action_mean) and torch.equal(m2.action_std, m.action_std)
    b = collate(ds, [0, 1])
    m.eval(), m2.eval()
    p1, s1 = m.open_loop(b["image"][:, :4], b["action"][:, :11])
    p2, s2 = m2.open_loop(b["image"][:, :4], b["action"][:, :11])
    assert torch.equal(p1, p2) and torch.equal(s1.h, s2.h)


@pytest.mark.parametrize("blind", [False, True])
def test_prediction_depends_on_the_action_unless_blind(blind):
    torch.manual_seed(2)
    cfg = tiny(action_blind=blind)
    ds = SyntheticClips(episodes=2, T=cfg.seq_len, size=cfg.image_size)
    m = WorldModel(cfg).eval()
    m.set_action_stats(*ds.action_stats())
    b = collate(ds, [0])
    other = b["action"].clone()
    other[:, 3:, :2] = -other[:, 3:, :2]
    pa, _ = m.open_loop(b["image"][:, :4], b["action"][:, :11])
    pb, _ = m.open_loop(b["image"][:, :4], other[:, :11])
    diff = (pa - pb).abs().mean().item()
    if blind:
        assert diff == 0.0
    else:
        assert diff > 1e-4 and math.isfinite(diff)
