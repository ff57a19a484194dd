"""The dream environment, the simulator seen through the model, and an actor-critic trained in imagination."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from test_dataset_fixture import synced_store_data

from egoworld import runs
from egoworld.actions import control_to_action
from egoworld.imagine.actor_critic import ACConfig, lambda_returns, load_policy
from egoworld.imagine.dream import (
    DreamEnv,
    FilteredSimEnv,
    actions_from_controls,
    estimate_hand_scale,
    load_starts,
)
from egoworld.model import preset
from egoworld.train.loop import train

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
# A micro model: trained for a few steps it is no good, but every path through the envs runs.
MICRO = dict(image_size=16, deter=48, hidden=48, cnn_depth=8, stoch=8, classes=8, seq_len=10, batch_size=8, overshoot=3,
             overshoot_stride=3, reward_bins=21, lr=2e-3, warmup=5, steps=20, val_every=20, ckpt_every=20, threads=1,
             context=3, log_every=20)
TASK = "push"  # in the fixture's training split (place03 is held out, stack is val)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = synced_store_data(tmp_path_factory)
    run = tmp_path_factory.mktemp("dream") / "run"
    train(preset("tiny", **MICRO), str(data / "episodes"), run, progress=False, echo=lambda s: None)
    model, _ = runs.load_model(run)
    return {"data": data, "store": data / "episodes", "run": run, "model": model}


@pytest.fixture(scope="module")
def starts(world: dict):
    return load_starts(world["model"], world["store"], TASK, n=2, context=3, horizon=10, split="all")


def test_starts_are_real_frames_of_the_task(world, starts):
    assert len(starts) == 2 and all(r["task_id"] == TASK for r in starts.rows)
    assert all(r["session_path"] and Path(r["session_path"]).is_dir() for r in starts.rows)
    # the first start of an episode is where the recorded person began the task
    task = json.loads((Path(starts.rows[0]["session_path"]) / "truth" / "task.json").read_text())
    mark = next(s["frame"] for s in task["segments"] if s["name"] == f"task_{TASK}")
    assert starts.rows[0]["frame"] == min(mark, starts.rows[0]["length"] - 11)
    assert starts.image.shape == (2, 3, 16, 16) and starts.image.dtype == torch.uint8
    from egoworld.capture.sim.catalog import person

    who = int("".join(ch for ch in starts.rows[0]["person"] if ch.isdigit()))
    np.testing.assert_allclose(starts.hand_scale[0], person(who).hand_scale, atol=0.02)


def test_check_env_passes_on_both_envs(world, starts):
    dream = DreamEnv(world["model"], starts, max_steps=6)
    sim = FilteredSimEnv(world["model"], starts, max_steps=6)
    assert dream.action_space == sim.action_space and dream.observation_space == sim.observation_space
    check_env(dream, skip_render_check=True)
    check_env(sim, skip_render_check=True)
    sim.close()


def test_dream_steps_the_prior_and_rewards_progress_change(world, starts):
    env = DreamEnv(world["model"], starts, max_steps=4, sample=False)
    obs, info = env.reset(seed=0, options={"start": 1})
    assert obs["image"].shape == (16, 16, 3) and obs["latent"].shape == (world["model"].cfg.feat_size,)
    feat0 = obs["latent"].copy()
    total = 0.0
    for k in range(4):
        obs, r, term, trunc, info2 = env.step(env.action_space.sample())
        total += r
    assert trunc and not np.allclose(obs["latent"], feat0)
    assert total == pytest.approx(info2["progress"] - info["progress"], abs=1e-6)  # rewards telescope


def test_controls_become_the_models_actions():
    rng = np.random.default_rng(0)
    c = rng.uniform(-0.05, 0.05, (5, 20))
    c[:, [12, 19]] = rng.uniform(0, 1, (5, 2))
    np.testing.assert_allclose(actions_from_controls(c, np.array([0.9, 0.9])), control_to_action(c, 0.9), atol=1e-12)
    per_row = actions_from_controls(c, np.stack([np.full(2, s) for s in (0.8, 0.9, 1.0, 1.1, 1.2)]))
    np.testing.assert_allclose(per_row[3], control_to_action(c[3], 1.1), atol=1e-12)
    np.testing.assert_allclose(estimate_hand_scale(control_to_action(c, [0.85, 1.1]), np.ones(5, bool)), [0.85, 1.1], atol=1e-6)


def test_lambda_returns_match_the_recursion():
    r = torch.tensor([[1.0], [2.0], [3.0]])
    d = torch.full((3, 1), 0.5)
    v = torch.tensor([[0.0], [1.0], [2.0], [4.0]])
    lam = 0.8
    r2 = 3 + 0.5 * 4
    r1 = 2 + 0.5 * (0.2 * 2 + 0.8 * r2)
    r0 = 1 + 0.5 * (0.2 * 1 + 0.8 * r1)
    assert torch.allclose(lambda_returns(r, d, v, lam)[:, 0], torch.tensor([r0, r1, r2]))


def test_dream_trained_policy_runs_in_the_simulator(world, tmp_path):
    from egoworld.imagine.dream_eval import run_dream
    from egoworld.video import iter_frames

    cfg = ACConfig(steps=12, batch=16, horizon=5, max_clips=8, clip_len=10, snapshots=3, log_every=6)
    out = tmp_path / "policy"
    res = run_dream(world["run"], TASK, out, cfg=cfg, eval_starts=2, horizon=8, echo=lambda s: None)
    saved = json.loads((out / "eval.json").read_text())
    assert set(saved["policies"]) == {"actor", "actor@0", "actor@6", "random", "still", "planner", "scripted",
                                      "scripted+0.05", "scripted+0.15", "scripted+0.3"}
    for name, s in saved["policies"].items():
        assert s["starts"] == 2 and np.isfinite(s["real_return"]) and np.isfinite(s["dream_return"]), name
        assert 0.0 <= s["real_success"] <= 1.0
    rc = saved["rank_correlation"]
    assert rc["over_policies"]["n"] == 10 and rc["over_episodes"]["n"] == 20
    # replaying the scripted person's recorded controls from a restored frame reproduces the recording
    replayed = [e["real_return"] for e in saved["episodes"]["scripted"]]
    recorded = [r["return"] for r in saved["scripted_recorded"]["per_start"]]
    np.testing.assert_allclose(replayed, recorded, atol=0.01)
    actor, meta = load_policy(out)
    assert meta["task"] == TASK and meta["model"]["model_sha256"].startswith("sha256:")
    assert [s["name"] for s in meta["snapshots"]] == ["step_000000", "step_000006", "step_000012"]
    feat = torch.zeros(1, world["model"].cfg.feat_size)
    assert torch.equal(actor.control(feat), load_policy(out, "step_000012")[0].control(feat))  # final = last snapshot
    assert res["policies"].keys() == saved["policies"].keys()
    assert len(list(iter_frames(out / "policy.mp4"))) == 9  # start frame + 8 steps, simulator | dream


def test_register_adds_dream_and_imagine_without_importing_torch():
    code = ("import sys, typer\nfrom egoworld.imagine.cli import register\napp = typer.Typer()\nregister(app)\n"
            "print('torch' in sys.modules, sorted(c.name for c in app.registered_commands))")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False ['dream', 'imagine']"


def test_interaction_loop_records_appends_fine_tunes_and_measures(world, tmp_path):
    """One round of `egoworld improve`: the planner's session is recorded like a capture (source interaction,
    what acted), joins the store, and the model is fine-tuned from its weights and measured again."""
    import shutil

    import pyarrow.parquet as pq

    from egoworld.improve import ImproveConfig, improve

    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    cfg = ImproveConfig(task=TASK, rounds=1, sessions=1, seconds=10.0, steps=2, eval_episodes=1, max_steps=6,
                        planner=dict(samples=4, iterations=1), objective=dict(terminal=0.5))
    res = improve(world["run"], data, tmp_path / "improve", cfg, echo=lambda *_: None)
    saved = json.loads((tmp_path / "improve" / "improve.json").read_text())
    assert [r["round"] for r in saved["rounds"]] == [0, 1] and saved["rounds"] == res["rounds"]
    assert saved["config"]["objective"] == {"terminal": 0.5}  # what the planner scored by, with the results
    r0, r1 = saved["rounds"]
    assert r1["real_frames"] == r0["real_frames"] + r1["interaction_frames"] and r1["interaction_frames"] == 10 * 30
    new = [p for p in data.iterdir() if (p / "session.json").exists() and
           json.loads((p / "session.json").read_text()).get("source") == "interaction"]
    assert len(new) == 1
    meta = json.loads((new[0] / "session.json").read_text())
    assert meta["interaction"]["round"] == 1 and meta["interaction"]["model_sha256"].startswith("sha256:")
    assert meta["behaviour"]["frames"]["agent"] > 0 and (new[0] / "consent.json").exists()
    eps = pq.read_table(next((data / "episodes" / "meta" / "episodes").rglob("*.parquet")), columns=["source"])
    assert "interaction" in eps.column("source").to_pylist()
    lineage = json.loads((runs.resolve(r1["checkpoint"]) / "lineage.json").read_text())
    assert lineage["init_from"]["checkpoint"] == r0["checkpoint"]
    before, _ = runs.load_model(r0["checkpoint"])
    after, _ = runs.load_model(r1["checkpoint"])
    assert not torch.equal(before.reward_head[-1].weight, after.reward_head[-1].weight)  # fine-tuned, not rebuilt
    assert 0.0 <= r1["success"] <= 1.0 and r1["episodes"] == 1
