"""Sync on real simulator sessions (MuJoCo renders, hands in view, parallax, noisy sensors).

A small batch (4 sessions × 8 s at 128×128, random offsets in ±500 ms and drifts in ±1000 ppm)
is captured once per test run. The estimate never reads truth/; only egoworld.sync.evaluate does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sim = pytest.importorskip("egoworld.capture.sim.record", reason="the simulator is not available")

from egoworld.sync import sync_session  # noqa: E402
from egoworld.sync.evaluate import aggregate, evaluate_session, shift_motion  # noqa: E402

N_SESSIONS, SECONDS = 4, 8.0
TASKS = ("push", "open_drawer", "push", "stack")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[list[Path], list[dict], Path]:
    data = tmp_path_factory.mktemp("sim")
    out = data / "aligned"
    paths = [sim.capture_session(data, sim.SessionConfig(index=i, seed=21, place=i, person=i, task=TASKS[i],
                                                           seconds=SECONDS, width=128, height=128))
             for i in range(N_SESSIONS)]
    return paths, [sync_session(p, out) for p in paths], out


def test_sim_sessions_sync_without_silent_errors(batch):
    paths, reports, _ = batch
    evals = [evaluate_session(p, r) for p, r in zip(paths, reports)]
    agg = aggregate(evals)
    # The median bound holds on this fixed batch (measured: median 1.04 ms, p95 5.85 ms —
    # one open_drawer session, flagged suspect, carries the tail). Four 8 s sessions are too few for
    # a stable p95: the p95 ≤ 5 ms is measured on the 48-session set (docs/sync.md).
    assert agg["median_abs_ms"] <= 2.0, agg
    assert agg["p95_abs_ms"] <= 8.0, agg
    for e, r in zip(evals, reports):
        assert r["verdict"] in ("ok", "suspect", "failed")
        for name, s in e["streams"].items():
            clock = r["streams"][name]["clock"]
            if r["clocks"][clock]["verdict"] == "ok":  # "ok" must mean it: never a silent wrong answer
                assert s["p95_abs_ms"] < 5.0, (r["session_id"], name, s)


def test_sim_known_shift_within_a_quarter_frame(batch, tmp_path):
    paths, reports, _ = batch
    k_ms = -83.0
    i = int(np.argmax([r["clocks"]["imu"]["confidence"] or 0 for r in reports]))
    r = sync_session(shift_motion(paths[i], tmp_path / "shifted", k_ms), tmp_path / "out")
    for clock in ("imu", "tracker"):
        d = r["clocks"][clock]["offset_ms"] - reports[i]["clocks"][clock]["offset_ms"]
        assert abs(d - k_ms) < 1000 / 30 / 4, (clock, d)


def test_sim_aligned_episode(batch):
    paths, reports, out = batch
    for p, r in zip(paths, reports):
        if r["verdict"] == "failed":
            continue
        t = pq.read_table(out / r["session_id"] / "aligned.parquet")
        assert t.num_rows == r["video"]["frames"]
        assert t.column("action").type.list_size == 138
        valid = t.column("action_valid").to_numpy(zero_copy_only=False)
        assert valid.mean() > 0.9 and not valid[-1]
        assert np.all(np.diff(t.column("t_video_ns").to_numpy()) > 0)
