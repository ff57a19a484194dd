"""The training loop end to end through its CLI: checkpoints, lineage, resume after SIGKILL, torchrun."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from egoworld import runs
from egoworld.model import preset
from egoworld.train import checkpoint as ck
from egoworld.train.data import batch_indices, rank_slice
from egoworld.train.optim import Adam
from egoworld.train.synthetic import SyntheticClips

MICRO = ["--set", "image_size=32", "--set", "deter=48", "--set", "hidden=48", "--set", "cnn_depth=8", "--set", "stoch=8",
         "--set", "classes=8", "--set", "reward_bins=21", "--seq-len", "8", "--batch-size", "4", "--set", "overshoot=2",
         "--set", "log_every=1", "--no-progress"]
ROOT = Path(__file__).resolve().parent.parent


def _train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "egoworld.train", "synthetic:10", "--out", str(out), *MICRO, *extra]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def test_data_order_is_a_function_of_step():
    a = [batch_indices(s, 10, 4, 0) for s in range(10)]
    assert a == [batch_indices(s, 10, 4, 0) for s in range(10)]
    flat = sum(a, [])
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))  # epochs w/o replacement
    assert batch_indices(0, 10, 4, 1) != a[0]
    parts = [rank_slice(a[3], r, 2) for r in range(2)]
    assert parts[0][0] + parts[1][0] == a[3] and parts[1][1] == 2


def test_checkpoints_keep_last_and_best_and_lineage(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(_train_cmd(out, "--steps", "12", "--ckpt-every", "3", "--val-every", "3", "--keep-last", "2",
                                  "--set", "threads=1"), env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    steps = [p.name for p in runs.list_checkpoints(out)]
    best = json.loads((out / "best.json").read_text())
    assert steps[-1] == "step_00000012" and len(steps) <= 3 and f"{best['checkpoint']}" in steps
    assert set(steps) - {best["checkpoint"]} == {"step_00000009", "step_00000012"} - {best["checkpoint"]}
    d = out / "checkpoints" / "step_00000012"
    assert {p.name for p in d.iterdir()} == {"model.safetensors", "optimizer.safetensors", "config.json", "lineage.json",
                                             "state.json"}
    assert not list((out / "checkpoints").glob(".tmp-*"))
    # never pickle: both weight files are safetensors and the optimizer state comes back into Adam
    model, cfg = runs.load_model(d)
    assert cfg.image_size == 32 and cfg.deter == 48
    opt = Adam(model.parameters(), lr=1e-3)
    state = ck.load_training_state(d, model, opt)
    assert state["step"] == 12 and state["total_steps"] == 12 and opt.step_count == 12
    assert all(float(v.abs().sum()) > 0 for v in opt.exp_avg_sq)
    # lineage lists exactly the training episodes: not the validation ones, not the held-out place
    lineage = json.loads((d / "lineage.json").read_text())
    train_ids = {e["session_id"] for e in SyntheticClips(episodes=10, T=8, size=32, split="train").episodes}
    other = {e["session_id"] for s in ("val", "heldout") for e in SyntheticClips(episodes=10, T=8, size=32, split=s).episodes}
    listed = {e["session_id"] for e in lineage["episodes"]}
    assert listed == train_ids and not listed & other and other
    assert all(e["consent_scopes"] == ["research", "commercial"] and e["content_hash"] for e in lineage["episodes"])
    assert lineage["code"]["egoworld"] and "data_spec" in lineage
    vals = [r for r in _rows(out / "metrics.csv") if r["split"] == "val"]
    assert [int(r["step"]) for r in vals] == [3, 6, 9, 12]
    assert best["val_loss"] == min(float(r["loss"]) for r in vals)


def test_resume_after_sigkill_matches_an_unkilled_run(tmp_path):
    steps = ["--steps", "40", "--ckpt-every", "4", "--val-every", "100", "--set", "threads=1"]
    ref = tmp_path / "ref"
    r = subprocess.run(_train_cmd(ref, *steps), env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]

    run = tmp_path / "killed"
    p = subprocess.Popen(_train_cmd(run, *steps), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (run / "checkpoints" / "step_00000008").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    done = [c.name for c in runs.list_checkpoints(run)]
    assert "step_00000040" not in done and done, done  # it really died mid-training

    r = subprocess.run(_train_cmd(run, *steps, "--resume"), env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stdout
    assert runs.list_checkpoints(run)[-1].name == "step_00000040"
    assert _rows(run / "data_order.csv") == _rows(ref / "data_order.csv")  # same batches, each once
    assert len(_rows(run / "data_order.csv")) == 40
    a = load_file(str(ref / "checkpoints/step_00000040/model.safetensors"))
    b = load_file(str(run / "checkpoints/step_00000040/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drop = ("time_s", "samples_per_s")
    assert _rows(run / "metrics.csv", drop) == _rows(ref / "metrics.csv", drop)


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    out = tmp_path / "run"
    ok = subprocess.run(_train_cmd(out, "--steps", "2", "--set", "threads=1"), env=_env(), capture_output=True, text=True,
                        timeout=240)
    assert ok.returncode == 0, ok.stderr[-2000:]
    again = subprocess.run(_train_cmd(out, "--steps", "2"), env=_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode != 0 and "--resume" in (again.stderr + again.stdout)


def test_init_from_starts_from_a_runs_weights_and_refuses_another_config(tmp_path):
    """`--init-from RUN`: a new run from RUN's weights (in its lineage); weights of another shape are an error
    that names the run's config, not a traceback."""
    first = tmp_path / "first"
    ok = subprocess.run(_train_cmd(first, "--steps", "2", "--set", "threads=1"), env=_env(), capture_output=True, text=True,
                        timeout=240)
    assert ok.returncode == 0, ok.stderr[-2000:]
    more = tmp_path / "more"
    ok = subprocess.run(_train_cmd(more, "--steps", "1", "--seed", "1", "--init-from", str(first), "--set", "threads=1",
                                   "--set", "ckpt_every=1"), env=_env(), capture_output=True, text=True, timeout=240)
    assert ok.returncode == 0, ok.stderr[-2000:]
    lineage = json.loads((more / "lineage.json").read_text())
    assert lineage["init_from"]["model_sha256"] == runs.model_sha256(runs.resolve(first))
    start, after = _weights(first, 2), _weights(more, 1)
    assert 0.0 < _rel_gap(start, after) < 0.05  # one step away from where the first run ended
    bad = subprocess.run(_train_cmd(tmp_path / "bad", "--steps", "1", "--init-from", str(first), "--set", "deter=64"),
                         env=_env(), capture_output=True, text=True, timeout=240)
    assert bad.returncode == 2 and "config.json" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]


def test_bad_store_or_occupied_out_is_an_error_not_a_traceback(tmp_path, tmp_path_factory):
    from test_dataset_fixture import synced_store_data

    from egoworld.dataset import layout as L
    from egoworld.dataset.store import open_store

    store = tmp_path / "episodes"
    shutil.copytree(synced_store_data(tmp_path_factory) / "episodes", store)
    small = MICRO[:MICRO.index("--seq-len")] + ["--seq-len", "4", "--batch-size", "2", "--no-progress"]

    def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "egoworld.train", str(store), "--out", str(out), *small,
                               "--set", "threads=1", "--steps", "1", *extra], env=_env(), capture_output=True,
                              text=True, timeout=240)

    ok = run(tmp_path / "run")
    assert ok.returncode == 0, ok.stderr[-2000:]
    again = run(tmp_path / "run")
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    # a data file outside the training split is gone: the run still refuses, naming it
    st = open_store(store)
    held = next(r["episode_index"] for r in st.episode_rows() if r["place"] in st.splits["held_out_places"])
    (store / L.data_path(held)).unlink()
    bad = run(tmp_path / "run2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    assert L.data_path(held) in bad.stderr and "rebuild" in bad.stderr
    (store / L.data_path(held)).write_bytes(b"PAR1 truncated")  # damaged inside the table, not missing
    bad = run(tmp_path / "run2b")
    assert bad.returncode == 2 and L.data_path(held) in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    train_ep = next(r["episode_index"] for r in st.episode_rows() if r["place"] not in st.splits["held_out_places"])
    (store / L.data_path(held)).unlink()
    shutil.copy2(store / L.data_path(train_ep), store / L.data_path(held))  # a whole file again: the check passes
    (store / L.data_path(train_ep)).write_bytes(b"PAR1 truncated")
    bad = run(tmp_path / "run2c")
    assert bad.returncode == 2 and L.data_path(train_ep) in bad.stderr and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    (store / "meta" / "info.json").write_text("{broken")
    bad = run(tmp_path / "run3")
    assert bad.returncode == 2 and "info.json" in bad.stderr and "Traceback" not in bad.stderr


def _torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "egoworld.train", "synthetic:10", "--out", str(out), *MICRO, *extra],
                          env=_env(), capture_output=True, text=True, timeout=240)


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / f"checkpoints/step_{step:08d}/model.safetensors"))


def _rel_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    va, vb = (torch.cat([d[k].flatten() for k in sorted(d)]) for d in (a, b))
    return float((va - vb).norm() / va.norm())


def _back_to(src: Path, dst: Path, step: int) -> Path:
    """A copy of a finished run as if it had been stopped after the checkpoint at ``step``."""
    shutil.copytree(src, dst)
    for c in runs.list_checkpoints(dst):
        if int(c.name.split("_")[1]) > step:
            shutil.rmtree(c)
    return dst


def test_torchrun_two_ranks_equal_one_rank_over_steps_and_resume_on_another_world_size(tmp_path):
    """Two ranks, each reading only its own episodes, take the one-rank steps (same global batch) for 6 steps,
    and a run stopped at step 3 continues on the other number of ranks to the same weights."""
    steps = ["--steps", "6", "--ckpt-every", "3", "--val-every", "3", "--keep-last", "4"]
    one, two = tmp_path / "g1.safetensors", tmp_path / "g2.safetensors"
    r1 = subprocess.run(_train_cmd(tmp_path / "r1", *steps, "--grad-dump", str(one), "--set", "threads=1"),
                        env=_env(), capture_output=True, text=True, timeout=240)
    assert r1.returncode == 0, r1.stderr[-3000:]
    r2 = _torchrun(tmp_path / "r2", *steps, "--grad-dump", str(two))
    assert r2.returncode == 0, (r2.stdout[-2000:], r2.stderr[-3000:])
    g1, g2 = load_file(str(one)), load_file(str(two))
    assert sum(float(v.norm()) for v in g1.values()) > 0
    assert _rel_gap(g1, g2) < 1e-4, _rel_gap(g1, g2)  # the first step's averaged gradient
    # the two ranks really split the batches: some steps have an uneven split (or one rank idle)
    ds = [SyntheticClips(episodes=10, length=48, T=8, size=32, split="train", shard=(r, 2)) for r in range(2)]
    owners = {e: ds[0].owner[e] for e in ds[0].owner}
    assert set(owners.values()) == {0, 1} and ds[0].owner == ds[1].owner
    counts = [sum(ds[0].owner_of(i) == 0 for i in batch_indices(s, len(ds[0]), 4, 0)) for s in range(6)]
    assert set(counts) != {2}, counts
    w1, w2 = _weights(tmp_path / "r1", 6), _weights(tmp_path / "r2", 6)
    assert _rel_gap(w1, _weights(tmp_path / "r1", 3)) > 5e-4  # the weights moved between the compared steps (~1e-3) …
    assert _rel_gap(w1, w2) < 1e-6, _rel_gap(w1, w2)  # … far more than 1 and 2 ranks differ (~5e-9)
    l1 = [float(r["loss"]) for r in _rows(tmp_path / "r1/metrics.csv") if r["split"] == "train"]
    l2 = [float(r["loss"]) for r in _rows(tmp_path / "r2/metrics.csv") if r["split"] == "train"]
    assert len(l1) == len(l2) == 6 and max(abs(a - b) / abs(a) for a, b in zip(l1, l2)) < 1e-4, (l1, l2)

    # stopped after step 3 on two ranks, continued on one; and the other way round
    r21 = subprocess.run(_train_cmd(_back_to(tmp_path / "r2", tmp_path / "r21", 3), *steps, "--resume", "--set", "threads=1"),
                         env=_env(), capture_output=True, text=True, timeout=240)
    assert r21.returncode == 0 and "resuming" in r21.stdout, r21.stderr[-3000:]
    r12 = _torchrun(_back_to(tmp_path / "r1", tmp_path / "r12", 3), *steps, "--resume")
    assert r12.returncode == 0 and "resuming" in r12.stdout, (r12.stdout[-2000:], r12.stderr[-3000:])
    for run in ("r21", "r12"):
        assert runs.list_checkpoints(tmp_path / run)[-1].name == "step_00000006"
        assert len(_rows(tmp_path / run / "data_order.csv")) == 6
        assert _rel_gap(w1, _weights(tmp_path / run, 6)) < 1e-6, (run, _rel_gap(w1, _weights(tmp_path / run, 6)))


def test_presets_are_overrides_of_one_config():
    t, s, b = preset("tiny"), preset("small"), preset("base")
    assert t.preset == "tiny" and s.deter > t.deter and b.image_size == 128
    assert preset("tiny", deter=8).deter == 8
    with pytest.raises(ValueError):
        preset("huge")


def test_adam_matches_torch_adam():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    ours, ref = Adam(a.parameters(), lr=1e-2, eps=1e-6, weight_decay=0.01), torch.optim.Adam(
        b.parameters(), lr=1e-2, eps=1e-6, weight_decay=0.01, foreach=False)
    x = torch.randn(16, 5)
    for _ in range(5):
        for net, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))
    again = Adam(a.parameters(), lr=1e-2)
    again.load_tensors(ours.tensors())
    assert again.step_count == 5 and torch.equal(again.exp_avg[0], ours.exp_avg[0])


def test_register_adds_train_eval_and_plan_without_importing_torch():
    code = ("import sys, typer\nfrom egoworld.train.cli import register as a\nfrom egoworld.evaluate.cli import register as b\n"
            "app = typer.Typer()\na(app)\nb(app)\nprint('torch' in sys.modules, sorted(c.name for c in app.registered_commands))")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False ['eval', 'plan', 'train']"
