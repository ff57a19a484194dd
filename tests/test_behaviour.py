"""The behaviour mix: play and failure recorded as first-class behaviour beside the task."""
from __future__ import annotations

import json

import numpy as np
import pytest

from egoworld.actions import CONTROL_HIGH
from egoworld.capture.sim.person import BEHAVIOURS, KNOT_FRAMES, KNOT_SCALE, MIXES, parse_mix
from egoworld.capture.sim.record import SessionConfig, capture_session, setup_episode


def test_parse_mix_names_weights_and_errors():
    assert parse_mix("task") is None  # the task once (every session a scripted success attempt)
    assert parse_mix("play") == MIXES["play"] and set(MIXES["play"]) <= set(BEHAVIOURS)
    w = parse_mix("task=1,knots=3")
    assert w == {"task": 0.25, "knots": 0.75}
    for bad in ("dance=1", "task=-1,knots=1", "knots=0", "knots"):
        with pytest.raises(ValueError, match="behaviour mix"):
            parse_mix(bad)


def _play(mix: str, frames: int, seed: int = 0, task: str = "push"):
    ep = setup_episode(SessionConfig(seed=seed, task=task, mix=mix, width=32, height=32))
    gen = ep.actor.controls()
    controls, wrists = [], []
    for _ in range(frames):
        c = next(gen)
        controls.append(c)
        ep.sim.step(c)
        wrists.append(ep.sim.body_pose().wrist_p.copy())
    return ep, np.array(controls), np.array(wrists)


def test_random_knots_hold_each_control_and_stay_over_the_table():
    ep, controls, wrists = _play("knots=1", 300, seed=3)
    counts = ep.actor.frames_by_behaviour
    assert sum(counts.values()) == 300 and counts["knots"] > 150
    starts = [f for f, name in ep.actor.log if name == "play_knots"]
    knot = controls[starts[-1]:]  # the last knots segment, in whole knots
    knot = knot[: len(knot) // KNOT_FRAMES * KNOT_FRAMES].reshape(-1, KNOT_FRAMES, 20)
    assert len(knot) >= 2
    np.testing.assert_array_equal(knot, np.repeat(knot[:, :1], KNOT_FRAMES, axis=1))  # held for KNOT_FRAMES frames
    assert np.all(knot[..., :6] == 0) and np.all(knot[..., [9, 10, 11, 16, 17, 18]] == 0)  # head still, wrists keep turning
    assert np.all(np.abs(knot[..., [6, 7, 8, 13, 14, 15]]) <= KNOT_SCALE * CONTROL_HIGH[6] + 1e-12)
    assert len(np.unique(knot[:, 0, 12])) == len(knot)  # a fresh grip per knot
    th = ep.task.place.table_height
    during = wrists[starts[0] + 40:]
    assert during[..., 2].min() > th - 0.05 and during[..., 2].max() < th + 0.6  # reversed before leaving the workspace


def test_play_mix_records_every_behaviour_and_its_frames(tmp_path):
    out = capture_session(tmp_path, SessionConfig(seed=1, task="open_drawer", seconds=12, width=32, height=32, mix="play"))
    meta = json.loads((out / "session.json").read_text())
    truth = json.loads((out / "truth" / "task.json").read_text())
    b = meta["behaviour"]
    assert b == truth["behaviour"] and b["mix"] == MIXES["play"]
    assert sum(b["frames"].values()) == 12 * 30  # every frame is attributed to one behaviour
    played = {s["name"][5:] for s in truth["segments"] if s["name"].startswith("play_")}
    assert played <= set(BEHAVIOURS) and len(played) >= 3
    assert set(b["frames"]) - {"arrive", "ready"} == played
    # the task-only mix writes sessions exactly as before: no behaviour block in session.json
    legacy = capture_session(tmp_path / "legacy", SessionConfig(seed=1, task="open_drawer", seconds=2, width=32, height=32))
    assert "behaviour" not in json.loads((legacy / "session.json").read_text())


def test_shortcut_check_flags_a_nuisance_signal_that_predicts_the_label():
    from egoworld.audit.behaviour import shortcut_check

    rng = np.random.default_rng(0)
    eye = rng.uniform(0.2, 0.8, 500)
    t = np.linspace(0, 1, 500)
    withdrawn = shortcut_check(1.0 - eye + rng.normal(0, 0.05, 500), eye, rng.permutation(t))  # "hands in" = "done"
    assert withdrawn["flagged"] == ["hand_distance_from_eyes"] and withdrawn["rho_with_reward"]["hand_distance_from_eyes"] < -0.9
    honest = shortcut_check(rng.uniform(0, 1, 500), eye, t)
    assert honest["flagged"] == [] and "no nuisance" in honest["why"]


def test_audit_reports_action_coverage_and_the_behaviour_mix(tmp_path):
    from typer.testing import CliRunner

    from egoworld.audit.audit import run_audit
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.record import plan_sessions
    from egoworld.cli import app

    data = tmp_path / "data"
    for i, mix in enumerate(("play", "task")):
        cfgs = plan_sessions(1, 1, 1, ["push"], seed=7 + i, seconds=10.0, width=64, height=64, mix=mix)
        done, failed = capture_many(data, cfgs, workers=1, progress=False)
        assert not failed
    r = CliRunner().invoke(app, ["sync", str(data)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["episodes", str(data)])
    assert r.exit_code == 0, r.output
    audit = run_audit(data)
    assert audit["summary"]["episodes"] == 2
    b = audit["coverage"]["behaviour"]
    assert b["mix"]["episodes_without_record"] == 1  # the task-only session records no mix
    assert abs(sum(b["mix"]["share"].values()) - 1.0) < 1e-3 and b["mix"]["frames"]["arrive"] > 0
    v = b["control"]["wrist_velocity"]
    assert 0 < v["left"]["covered"] <= v["left"]["cells"] == 7 ** 3
    assert abs(sum(b["hand_to_object"]["share_of_frames"].values()) - 1.0) < 1e-3
    assert set(b["shortcut"]["rho_with_reward"]) == {"hand_distance_from_eyes", "episode_time"}


def test_a_capture_can_start_at_the_table_without_walking():
    ep = setup_episode(SessionConfig(seed=2, task="stack", mix="play", start="table", width=32, height=32))
    head, _, wp, _, _ = ep.actor.ready_pose(ep.actor.focus_x())
    pose = ep.sim.body_pose()
    np.testing.assert_allclose(pose.head_p, head)
    np.testing.assert_allclose(pose.wrist_p, wp)  # hands raised over the near edge: where closed-loop episodes start
    gen = ep.actor.controls()
    heads = []
    for _ in range(150):
        ep.sim.step(next(gen))
        heads.append(ep.sim.body_pose().head_p.copy())
    assert np.abs(np.array(heads)[:, :2] - head[:2]).max() < 0.25  # looks around and leans, never walks up
    assert "arrive" in ep.actor.frames_by_behaviour and not any(n == "approach" for _, n in ep.actor.log)
    with pytest.raises(ValueError, match="start must be"):
        setup_episode(SessionConfig(start="run"))
