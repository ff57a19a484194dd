"""Shared data for the dataset / audit / export tests: four 8-second sessions at 96², synced and packed once.

The repo-wide ``sim_data`` fixture has 4-second sessions, too short for sync to be sure of a clock
(it may call them 'failed', and sync's thresholds are still moving); 8 seconds gives sync enough
windows. Built once per test run under pytest's base temp folder and copied by each test module
that damages or revokes it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def synced_store_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA folder: sessions + aligned/ + episodes/ (built on first call, reused after)."""
    import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.record import plan_sessions
    from egoworld.dataset.build import build_store
    from egoworld.session import find_sessions
    from egoworld.sync.batch import run_batch

    root = tmp_path_factory.getbasetemp() / "egoworld_dataset_data"
    data = root / "data"
    if (root / "DONE").exists():
        return data
    shutil.rmtree(root, ignore_errors=True)
    configs = plan_sessions(4, places=4, people=4, tasks=["push", "open_drawer", "pick_place", "stack"], seed=11,
                            seconds=8.0, width=96, height=96, drift_ppm=300.0)
    done, failed = capture_many(data, configs, workers=2, progress=False)
    assert not failed, failed
    run_batch(find_sessions(data), data / "aligned", workers=2)
    build_store(data, workers=2)
    (root / "DONE").write_text("ok")
    return data


def copy_data(src: Path, dst: Path) -> Path:
    """A private copy of a DATA folder, with the store's session paths re-pointed at the copy."""
    import json

    from egoworld.dataset import layout as L

    shutil.copytree(src, dst)
    sp = dst / "episodes" / L.SESSIONS_PATH
    if sp.exists():
        doc = json.loads(sp.read_text())
        for s in doc["sessions"]:
            s["path"] = str(dst / Path(s["path"]).name)
            s["consent_file"] = str(dst / Path(s["path"]).name / "consent.json")
        sp.write_text(json.dumps(doc))
    return dst
