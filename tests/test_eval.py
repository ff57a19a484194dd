"""Evaluation: metrics, probe, the full `eval` pass on the square world, counterfactual sensitivity."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egoworld.evaluate.counterfactual import synthetic_counterfactual
from egoworld.evaluate.metrics import psnr, ssim
from egoworld.evaluate.probe import MLPProbe, RidgeProbe
from egoworld.model import preset
from egoworld.runs import load_model
from egoworld.train.loop import train
from egoworld.train.synthetic import SyntheticClips

torch.set_num_threads(1)
WORLD = "synthetic:12:0.4:0.15"  # a big, fast square: its motion is learnable in a few dozen steps
MICRO = dict(image_size=16, deter=48, hidden=48, cnn_depth=8, stoch=8, classes=8, seq_len=10, batch_size=8, overshoot=3,
             overshoot_stride=3, reward_bins=21, lr=2e-3, warmup=10, steps=60, val_every=30, ckpt_every=30, threads=1,
             context=3, log_every=30)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An action-conditioned and an action-blind micro model, trained briefly on the square world."""
    root = tmp_path_factory.mktemp("eval_runs")
    out = {}
    for name, blind in (("model", False), ("blind", True)):
        train(preset("tiny", action_blind=blind, **MICRO), WORLD, root / name, progress=False, echo=lambda s: None)
        out[name] = root / name
    return out


def test_psnr_and_ssim():
    a = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    assert torch.allclose(ssim(a, a), torch.ones(2, 3), atol=1e-5)
    assert (psnr(a, a) >= 59.9).all()
    noisy = (a.float() / 255 + 0.1 * torch.randn(a.shape)).clamp(0, 1)
    mse = (noisy - a.float() / 255).square().flatten(-3).mean(-1)
    assert torch.allclose(psnr(noisy, a), -10 * torch.log10(mse), atol=1e-4)
    noisier = (a.float() / 255 + 0.4 * torch.randn(a.shape)).clamp(0, 1)
    assert (ssim(noisier, a) < ssim(noisy, a)).all() and (ssim(noisy, a) < 0.99).all()


def test_ridge_probe_recovers_a_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 12, generator=g)
    w = torch.randn(12, 3, generator=g)
    y = x @ w + 0.5
    probe = RidgeProbe.fit(x, y, l2=1e-6)
    assert torch.allclose(probe(x), y, atol=1e-3)


def test_mlp_probe_reads_a_camera_frame_product_a_linear_probe_cannot():
    """Target = R(yaw)ᵀ·p with yaw and p as separate feature columns: the case of camera-frame positions."""
    g = torch.Generator().manual_seed(1)
    n = 3000
    yaw, p = torch.rand(n, generator=g) * 2 - 1, torch.randn(n, 2, generator=g) * 0.3
    x = torch.cat([yaw[:, None], p, torch.randn(n, 5, generator=g) * 0.1], 1)  # + nuisance columns
    c, s = yaw.cos(), yaw.sin()
    y = torch.stack([c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1]], 1)
    fit, test = slice(0, 2500), slice(2500, None)
    ridge = RidgeProbe.fit(x[fit], y[fit], l2=1e-3)
    mlp = MLPProbe.fit(x[fit], y[fit], group=torch.arange(2500) // 10, epochs=300, patience=30)
    err = lambda probe: (probe(x[test]) - y[test]).square().mean().sqrt().item()  # noqa: E731
    spread = y[test].std(0).square().mean().sqrt().item()
    assert err(mlp) < 0.35 * err(ridge), (err(mlp), err(ridge))
    assert err(mlp) < 0.2 * spread
    again = MLPProbe.fit(x[fit], y[fit], group=torch.arange(2500) // 10, epochs=300, patience=30)
    assert torch.equal(again(x[test]), mlp(x[test]))  # seeded: the same probe every time


def test_mlp_probe_reads_a_feature_that_is_a_target_exactly():
    """One target is a feature column (the body part of the state), one a product: the first is read by the
    ridge path (sub-mm), the second by the hidden layer — each column takes its better read-out."""
    g = torch.Generator().manual_seed(2)
    n = 3000
    yaw, p = torch.rand(n, generator=g) * 2 - 1, torch.randn(n, 2, generator=g) * 0.3
    onehot = torch.nn.functional.one_hot(torch.randint(0, 16, (n,), generator=g), 16).float()
    x = torch.cat([yaw[:, None], p, onehot, torch.randn(n, 40, generator=g)], 1)
    y = torch.stack([p[:, 0], yaw.cos() * p[:, 0] + yaw.sin() * p[:, 1]], 1)
    fit, test = slice(0, 2500), slice(2500, None)
    mlp = MLPProbe.fit(x[fit], y[fit], group=torch.arange(2500) // 10)
    err = (mlp(x[test]) - y[test]).abs().mean(0)
    assert mlp.use_linear.tolist() == [True, False]
    assert err[0] < 0.01 * y[test, 0].abs().mean() and err[1] < 0.3 * y[test, 1].abs().mean(), err


def test_counterfactual_sensitivity_conditioned_vs_blind(runs):
    model, _ = load_model(runs["model"])
    blind, _ = load_model(runs["blind"])
    ds = SyntheticClips(episodes=12, length=48, T=10, size=16, split="heldout", square=0.4, speed=0.15)
    res = synthetic_counterfactual({"model": model, "action_blind": blind}, ds, context=3, horizon=6)
    assert res["model"]["sim_abs_diff"] > 0.01  # the two action sequences really differ in the world
    # non-zero (the warp decoder starts as "copy the last frame", so a short run moves few pixels) ...
    assert res["model"]["gain"] > 0.003 and res["model"]["model_abs_diff"] > 1e-4
    assert res["model"]["cosine"] > 0  # and it moves pixels the way the world does, not just anyhow
    assert res["action_blind"]["gain"] == 0.0 and res["action_blind"]["model_abs_diff"] == 0.0  # ... vs exactly 0


def test_eval_writes_json_figures_and_videos(runs):
    from egoworld.evaluate.run import evaluate

    r = evaluate(runs["model"], WORLD, blind=runs["blind"], horizon=6, max_clips=16, videos=1, echo=lambda s: None)
    out = runs["model"] / "eval"
    saved = json.loads((out / "eval.json").read_text())
    assert saved["splits"].keys() == {"val", "heldout"}
    for split in ("val", "heldout"):
        res = saved["splits"][split]
        assert {"model", "action_blind", "copy_last", "beats", "summary"} <= set(res)
        for name in ("model", "action_blind", "copy_last"):
            assert len(res[name]["psnr"]) == 6 and len(res[name]["probe_all"]) == 6
            assert set(res["summary"][name]["psnr"]) == {"1", "2", "5"}
        assert set(res["beats"]["psnr_vs_copy_last"]) == {"2", "5"}
        assert set(res["beats"]["probe_object_vs_action_blind"]) == {"2", "5"}  # each probe group is compared too
        assert set(res["paired"]["probe_object_vs_copy_last"]) == {"2", "5"}
        for key in ("psnr_vs_copy_last", "probe_all_vs_copy_last", "psnr_vs_action_blind", "probe_all_vs_action_blind"):
            for v in res["paired"][key].values():
                assert v["low"] <= v["mean"] <= v["high"] and v["verdict"] in ("better", "worse", "tie")
        # the paired PSNR difference is the difference of the two curves
        d = res["paired"]["psnr_vs_copy_last"]["2"]["mean"]
        assert abs(d - (res["model"]["psnr"][1] - res["copy_last"]["psnr"][1])) < 1e-3
    # copy-last is scored exactly: recompute horizon 1 by hand on the same clips
    from egoworld.evaluate.openloop import eval_indices
    from egoworld.train.data import collate

    ds = SyntheticClips(episodes=12, length=48, T=3 + 6, size=16, split="heldout", square=0.4, speed=0.15)
    b = collate(ds, eval_indices(len(ds), 16))
    by_hand = psnr(b["image"][:, 2], b["image"][:, 3]).mean()
    assert abs(by_hand - saved["splits"]["heldout"]["copy_last"]["psnr"][0]) < 1e-3
    assert saved["generalisation_gap"]["psnr"].keys() == {"1", "2", "5"}
    assert saved["counterfactual"]["action_blind"]["gain"] == 0.0
    for f in saved["figures"] + saved["videos"] + ["eval.html"]:
        assert (out / f).stat().st_size > 0
    assert r["checkpoint"] == saved["checkpoint"]
    assert saved["probe_frames"] == 3 + 6  # context + horizon: the probe has seen imagined states of every horizon


def test_probe_fitted_on_clips_as_long_as_the_evaluation(runs, tmp_path):
    """By default the probe is fitted on C+H frames (imagined states of every horizon); --probe-frames sets another
    length: other probe, same frames."""
    from egoworld.evaluate.run import evaluate

    base = evaluate(runs["model"], WORLD, horizon=6, max_clips=8, videos=0, out=tmp_path / "a", echo=lambda s: None)
    short = evaluate(runs["model"], WORLD, horizon=6, max_clips=8, videos=0, out=tmp_path / "b", probe_frames=6,
                     echo=lambda s: None)
    assert base["probe_frames"] == 9 and short["probe_frames"] == 6
    a, b = base["splits"]["heldout"]["model"], short["splits"]["heldout"]["model"]
    assert a["psnr"] == b["psnr"] and a["probe_all"] != b["probe_all"]


def test_paired_difference_intervals_resample_episodes():
    from egoworld.evaluate.openloop import paired_difference

    g = torch.Generator().manual_seed(0)
    episode = torch.arange(20).repeat_interleave(4)  # 20 episodes × 4 clips
    base = torch.rand(80, 3, generator=g)
    better = paired_difference(base + 0.5, base, episode, higher_is_better=True)
    assert torch.allclose(better[:, 0], torch.full((3,), 0.5)) and (better[:, 1] > 0.49).all()
    worse = paired_difference(base + 0.5, base, episode, higher_is_better=False)  # e.g. a larger error
    assert (worse[:, 2] < 0).all()
    # Noise shared by the clips of an episode: the interval must widen with it, and straddle 0.
    shared = torch.randn(20, 1, 3, generator=g).expand(20, 4, 3).reshape(80, 3)
    tie = paired_difference(base + shared, base, episode, higher_is_better=True)
    assert (tie[:, 1] < 0).all() and (tie[:, 2] > 0).all()
    naive = paired_difference(base + shared, base, torch.arange(80), higher_is_better=True)
    assert ((tie[:, 2] - tie[:, 1]) > 1.5 * (naive[:, 2] - naive[:, 1])).all()
    nan = base.clone()
    nan[0] = float("nan")
    assert torch.isfinite(paired_difference(nan, base, episode, higher_is_better=True)).all()


def test_probe_targets_are_in_the_camera_frame():
    from scipy.spatial.transform import Rotation as R

    from egoworld.model.nets import to_head_frame

    q = R.random(6, random_state=1)
    p, head = torch.randn(6, 3), torch.randn(6, 3)
    wxyz = torch.tensor(q.as_quat(scalar_first=True), dtype=torch.float32)
    assert torch.allclose(to_head_frame(p, head, wxyz), torch.tensor(q.inv().apply((p - head).numpy()), dtype=torch.float32),
                          atol=1e-5)
