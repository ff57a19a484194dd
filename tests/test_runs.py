"""A trained run: resolving checkpoints, strict and decoder-less loads, weights, hashes, and errors naming the file."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from egoworld import runs
from egoworld.model import WorldModel, preset


def _tiny_cfg():
    return preset("tiny", image_size=32, cnn_depth=8, deter=64, stoch=8, classes=8, hidden=64)


def _checkpoint(root, step, model, cfg, lineage=None):
    """A checkpoint folder as training leaves it (without the optimizer, which reading never needs)."""
    d = runs.checkpoint_dir(root, step)
    runs.save_weights(d / runs.WEIGHTS, model, {"format": "pt", "step": str(step)})
    (d / "config.json").write_text(cfg.to_json())
    (d / "lineage.json").write_text(json.dumps(lineage or {"data": "data/episodes", "episodes": [{"session_id": "s0"}]}))
    (d / "state.json").write_text(json.dumps({"step": step}))
    return d


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    model = WorldModel(cfg)
    root = tmp_path / "run"
    (root / runs.CKPT_DIR).mkdir(parents=True)
    (root / "config.json").write_text(cfg.to_json())
    for step in (10, 20, 30):
        _checkpoint(root, step, model, cfg)
    return root, model, cfg


def test_resolve_prefers_best_then_latest_and_ignores_unfinished_checkpoints(run):
    root, model, cfg = run
    (root / runs.CKPT_DIR / ".tmp-step_00000040-123").mkdir()  # a write cut short
    (root / runs.CKPT_DIR / "step_00000050").mkdir()  # no state.json: not complete
    assert [p.name for p in runs.list_checkpoints(root)] == ["step_00000010", "step_00000020", "step_00000030"]
    assert runs.resolve(root).name == "step_00000030"
    runs.write_best(root, runs.checkpoint_dir(root, 20), 1.5, 20)
    assert runs.resolve(root).name == "step_00000020" and runs.resolve(root, which="latest").name == "step_00000030"
    ckpt = runs.checkpoint_dir(root, 10)
    assert runs.resolve(ckpt) == ckpt  # a checkpoint folder is its own answer
    assert runs.is_run(root) and runs.is_run(ckpt) and not runs.is_run(root / runs.CKPT_DIR)
    assert runs.checkpoint_step(ckpt) == 10
    runs.prune(root, keep_last=1)
    assert [p.name for p in runs.list_checkpoints(root)] == ["step_00000020", "step_00000030"]  # the best one stays


def test_strict_load_returns_the_saved_weights_in_eval_mode(run):
    root, model, cfg = run
    loaded, lcfg = runs.load_model(root)
    assert lcfg == cfg and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_decoder_that_no_longer_matches_loads_only_without_the_decoder(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_cfg()
    sd = WorldModel(cfg).state_dict()
    (tmp_path / "config.json").write_text(cfg.to_json())
    # an older run: its decoder's weights are named (and shaped) as the code no longer builds them
    old = {("decoder.legacy." + k[len(runs.DECODER):] if k.startswith(runs.DECODER) else k): v for k, v in sd.items()}
    runs.save_weights(tmp_path / runs.WEIGHTS, old)
    with pytest.raises(RuntimeError, match=f"{tmp_path / runs.WEIGHTS}: the weights do not match"):
        runs.load_model(tmp_path)
    torch.manual_seed(1)
    loaded, _ = runs.load_model(tmp_path, decoder=False)
    built = loaded.state_dict()
    for k, v in sd.items():
        if not k.startswith(runs.DECODER):
            assert torch.equal(built[k], v), k
    decoder = [k for k in sd if k.startswith(runs.DECODER) and sd[k].dtype.is_floating_point and sd[k].numel() > 1]
    assert decoder and any(not torch.equal(built[k], sd[k]) for k in decoder)  # left as built, not read from the file
    del old["reward_head.0.weight"]  # anything beyond the decoder must still match
    runs.save_weights(tmp_path / runs.WEIGHTS, old)
    with pytest.raises(RuntimeError, match="beyond the decoder.*reward_head.0.weight"):
        runs.load_model(tmp_path, decoder=False)


def test_missing_or_damaged_checkpoints_are_errors_that_name_the_file(run, tmp_path):
    root, model, cfg = run
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty'}: no checkpoint found"):
        runs.resolve(tmp_path / "empty")
    ckpt = runs.checkpoint_dir(root, 30)
    weights = ckpt / runs.WEIGHTS
    weights.write_bytes(b"not safetensors at all")
    with pytest.raises(runs.RunError, match=f"{weights}: not a readable safetensors file"):
        runs.load_model(ckpt)
    weights.write_bytes(weights.read_bytes()[:5])
    with pytest.raises(ValueError, match=str(weights)):  # RunError is a ValueError: the CLI prints one line
        runs.load_weights(weights)
    with pytest.raises(FileNotFoundError, match=str(ckpt / "optimizer.safetensors")):
        runs.load_weights(ckpt / "optimizer.safetensors")
    ckpt = runs.checkpoint_dir(root, 20)
    (ckpt / "config.json").write_text("{ cut short")
    with pytest.raises(runs.RunError, match=f"{ckpt / 'config.json'}: not valid JSON"):
        runs.load_model(ckpt)
    (ckpt / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=str(ckpt / "config.json")):
        runs.read_config(ckpt)


def test_weights_round_trip_atomically_and_hash_as_their_bytes(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    path = runs.save_weights(tmp_path / "policy.safetensors", module, {"format": "pt", "kind": "test"})
    assert [p.name for p in tmp_path.iterdir()] == ["policy.safetensors"]  # no temporary file left behind
    back = runs.load_weights(path)
    assert back.keys() == module.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in module.state_dict().items())
    runs.save_weights(tmp_path / runs.WEIGHTS, module)
    first = runs.model_sha256(tmp_path)
    assert first == "sha256:" + hashlib.sha256((tmp_path / runs.WEIGHTS).read_bytes()).hexdigest()
    with torch.no_grad():
        module[0].weight.add_(1.0)
    runs.save_weights(tmp_path / runs.WEIGHTS, {**module.state_dict(), "extra": torch.zeros(3)})  # other bytes
    assert runs.model_sha256(tmp_path) != first


def test_lineage_and_provenance_of_a_run(run):
    root, model, cfg = run
    (root / "lineage.json").write_text(json.dumps({"data": "data/episodes", "episodes": []}))
    ckpt = runs.resolve(root)
    assert runs.lineage_file(root) == ckpt / "lineage.json"  # the checkpoint's own record first
    assert runs.read_lineage(ckpt)["data"] == "data/episodes"
    (ckpt / "lineage.json").unlink()
    assert runs.lineage_file(ckpt) == root / "lineage.json"  # a checkpoint without one: its run's
    assert runs.read_lineage(root / "nowhere") == {}
    record, trained_on = runs.provenance(root, runs.checkpoint_dir(root, 20))
    assert record == {"run": str(root), "checkpoint": str(runs.checkpoint_dir(root, 20)),
                      "model_sha256": runs.model_sha256(runs.checkpoint_dir(root, 20)), "step": 20,
                      "trained_on": {"data": "data/episodes"}}
    assert trained_on == [{"session_id": "s0", "role": "model_training"}]
