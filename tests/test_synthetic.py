"""Synthetic episodes: model rollouts written as a store the episode loader reads, with lineage to model and seeds."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from test_dataset_fixture import copy_data, synced_store_data

from egoworld import runs
from egoworld.dataset import layout as L
from egoworld.dataset.check import check_store
from egoworld.dataset.loader import ClipDataset
from egoworld.dataset.store import open_store
from egoworld.imagine.synthetic import LINEAGE_PATH, MODES, export_synthetic
from egoworld.model import preset
from egoworld.session import file_sha256
from egoworld.train.loop import train

torch.set_num_threads(1)
MICRO = dict(image_size=16, deter=48, hidden=48, cnn_depth=8, stoch=8, classes=8, seq_len=10, batch_size=8, overshoot=3,
             overshoot_stride=3, reward_bins=21, lr=2e-3, warmup=5, steps=10, val_every=10, ckpt_every=10, threads=1,
             context=3, log_every=10)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A private copy of the shared data (a test revokes consent in it), a micro model, and a synthetic store inside it."""
    root = tmp_path_factory.mktemp("synthetic")
    data = copy_data(synced_store_data(tmp_path_factory), root / "data")
    run = root / "run"
    train(preset("tiny", **MICRO), str(data / "episodes"), run, progress=False, echo=lambda s: None)
    syn = data / "synthetic"
    res = export_synthetic(run, data / "episodes", syn, episodes=4, length=20, split="all", seed=1, echo=lambda s: None)
    return {"data": data, "run": run, "syn": syn, "res": res}


def test_synthetic_store_loads_like_a_real_one(made):
    syn = made["syn"]
    assert made["res"]["episodes"] == 4 and made["res"]["frames"] == 80
    assert check_store(syn) == []  # the LeRobot-v3 layout check every store passes
    ds = ClipDataset(syn, T=8, size=16, split="all")
    item = ds[0]
    assert item["image"].shape == (8, 3, 16, 16) and item["action"].shape == (8, 138) and item["state"].shape == (8, 21)
    assert bool(item["has_reward"])
    store = open_store(syn)
    assert store.info["egoworld"]["synthetic"] is True and store.info["egoworld"]["lineage"] == LINEAGE_PATH
    rows = store.episode_rows()
    assert [r["source"] for r in rows] == ["synthetic"] * 4 and all(r["length"] == 20 for r in rows)
    state = np.asarray(pq.read_table(store.data_file(0)).column("observation.state").to_pylist())
    np.testing.assert_allclose(np.linalg.norm(state[:, 3:7], axis=1), 1.0, atol=1e-5)  # unit quaternions


def test_lineage_names_the_model_and_every_seed_with_its_consent(made):
    syn, run, data = made["syn"], made["run"], made["data"]
    lin = json.loads((syn / LINEAGE_PATH).read_text())
    ckpt = runs.resolve(run)
    assert lin["synthetic"] is True and lin["model"]["checkpoint"] == str(ckpt)
    assert lin["model"]["model_sha256"] == runs.model_sha256(ckpt)
    real = {r["session_id"]: r for r in open_store(data / "episodes").episode_rows()}
    real_store = open_store(data / "episodes")
    seeds = {e["episode_index"]: e for e in lin["episodes"] if e["role"] == "seed"}
    trained = [e for e in lin["episodes"] if e["role"] == "model_training"]
    assert trained and {e["session_id"] for e in trained} <= set(real)
    syn_rows = open_store(syn).episode_rows()
    assert [s["mode"] for s in lin["synthetic_episodes"]] == list(MODES)
    for s, row in zip(lin["synthetic_episodes"], syn_rows):
        seed = seeds[s["seed_episode_index"]]
        src = real[seed["session_id"]]
        assert s["session_id"] == row["session_id"] and s["seed_session_id"] == src["session_id"]
        assert seed["content_hash"]["data"] == file_sha256(real_store.data_file(src["episode_index"]))
        # the synthetic episode carries its seed's consent, place, person and task
        assert row["subject_id"] == src["subject_id"] and row["consent_scopes"] == src["consent_scopes"]
        assert json.loads(row["consent_json"]) == json.loads(src["consent_json"])
        assert (row["place"], row["person"], row["task_id"]) == (src["place"], src["person"], src["task_id"])
    # "recorded" replays the seed's own actions (where they were valid)
    first = lin["synthetic_episodes"][0]
    assert first["mode"] == "recorded"
    seed_t = pq.read_table(real_store.data_file(first["seed_episode_index"]), columns=["action", "action_valid"])
    f = first["start_frame"]
    rec = np.asarray(seed_t.column("action").to_pylist())[f:f + 19]
    ok = np.asarray(seed_t.column("action_valid").to_pylist())[f:f + 19]
    mine = np.asarray(pq.read_table(open_store(syn).data_file(0), columns=["action"]).column("action").to_pylist())[:19]
    np.testing.assert_allclose(mine[ok], rec[ok], atol=1e-6)


def test_revoking_a_seed_subject_reaches_the_synthetic_episodes(made):
    from egoworld.audit.rights import current_consent, revoke

    syn, data = made["syn"], made["data"]
    subject = open_store(syn).episode_rows()[0]["subject_id"]
    record = revoke(subject, data, by="test", date="2030-01-01", reason="test")
    users = [u["lineage"] for u in record["checkpoints_using"]]
    assert str(syn / LINEAGE_PATH) in users  # the synthetic store is found as a user of the subject's data
    sessions = json.loads((syn / L.SESSIONS_PATH).read_text())["sessions"]
    mine = [s for s in sessions if (s.get("consent") or {}).get("subject_id") == subject]
    assert mine and all(current_consent(s)["revoked_at"] == "2030-01-01" for s in mine)  # read through the seed's consent.json
