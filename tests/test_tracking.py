"""Tracked objects: the simulator's tracker, and the world model's state that carries the points."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import egoworld.capture.sim  # noqa: F401  (off-screen GL before mujoco loads)
from egoworld.actions import control_between, control_to_action
from egoworld.capture.sim.env import SimEnv
from egoworld.capture.sim.tasks import DRAWER_OPEN
from egoworld.model import WorldModel, preset
from egoworld.model.losses import world_model_loss
from egoworld.model.nets import EGO_POS_SCALE


@pytest.mark.parametrize("task", ["push", "open_drawer", "pick_place", "stack"])
def test_the_tracker_reports_the_tasks_object_and_goal(task: str) -> None:
    env = SimEnv(task=task, width=32, height=32)
    try:
        obs, _ = env.reset(seed=4)
        pts = obs["objects"].reshape(2, 3)
        assert np.allclose(pts[0], env.task.reach_point(), atol=1e-6)
        if task == "push":
            assert np.allclose(pts[1, :2], env.task.layout.target, atol=1e-6)
        if task == "open_drawer":
            # the goal is the handle pulled open: it stays put while the drawer opens
            sim = env.task.sim
            q = env.task._drawer_q
            sim.data.qpos[q] = 0.6 * DRAWER_OPEN
            import mujoco

            mujoco.mj_kinematics(sim.model, sim.data)
            moved = env.task.track_points()
            assert np.linalg.norm(moved[0] - pts[0]) == pytest.approx(0.6 * DRAWER_OPEN, abs=1e-4)
            assert np.allclose(moved[1], pts[1], atol=1e-5)
        assert np.linalg.norm(pts[1] - pts[0]) > 0.05  # the goal is somewhere else
    finally:
        env.close()


def _cfg(track_points: int = 2):
    return preset("tiny", image_size=32, cnn_depth=8, deter=32, hidden=32, stoch=4, classes=4, track_points=track_points)


def test_the_state_carries_tracked_points_in_the_head_frame_and_kinematics_moves_them_exactly() -> None:
    """On a recorded step of the simulator where nothing touches the object, the kinematic step of the
    state (head turn and move) takes the point's head-frame position at t to the one at t+1."""
    env = SimEnv(task="push", width=32, height=32)
    try:
        obs0, _ = env.reset(seed=2)
        for _ in range(10):  # let the object settle on the table
            obs0, *_ = env.step(np.zeros(20))
        pose0 = env.sim.body_pose()
        control = np.zeros(20)
        control[0:6] = [0.004, -0.003, 0.002, 0.01, -0.02, 0.015]  # the head moves and turns; the hands stay still
        obs1, *_ = env.step(control)
        done = control_between(pose0, env.sim.body_pose(), np.zeros(2))  # what the body did (the action's definition)
    finally:
        env.close()
    model = WorldModel(_cfg())
    state = torch.from_numpy(np.stack([obs0["state"], obs1["state"]]))[None]
    objects = torch.from_numpy(np.stack([obs0["objects"], obs1["objects"]]))[None]
    body, known = model.sense(state, (1, 2), objects=objects)
    assert body.shape == (1, 2, 9 + 6) and known.shape == (1, 2, 15) and bool(known.all())
    act = torch.from_numpy(control_to_action(done)[None].astype(np.float32))
    model.set_action_stats(torch.zeros(act.shape[-1]), torch.ones(act.shape[-1]))
    kin = model.rssm.kinematics(body[:, 0], act)
    err = (kin[:, 9:] - body[:, 1, 9:]).abs().max() * EGO_POS_SCALE
    moved = (body[:, 0, 9:] - body[:, 1, 9:]).abs().max() * EGO_POS_SCALE
    assert moved > 1e-3 and err < 1e-5, (float(moved), float(err))


def test_untracked_points_are_predicted_not_sensed_and_carry_no_loss() -> None:
    torch.manual_seed(0)
    model = WorldModel(_cfg())
    B, T = 2, 6
    state = torch.zeros(B, T, 21)
    state[..., 3] = 1.0
    state[..., 2] = 1.5
    objects = torch.randn(B, T, 6)
    objects[0, :, 3:] = float("nan")  # the goal is not tracked in clip 0
    body, known = model.sense(state, (B, T), objects=objects)
    assert not known[0, :, 12:].any() and known[0, :, 9:12].all() and known[1].all()
    assert torch.isfinite(body).all()
    tgt, w = model.body_target(state, objects)
    assert torch.isfinite(tgt).all() and float(w[0, :, 12:].sum()) == 0.0 and bool((w[1] == 1).all())
    batch = {"image": torch.randint(0, 255, (B, T, 3, 32, 32), dtype=torch.uint8), "action": torch.zeros(B, T, 138),
             "action_valid": torch.ones(B, T, dtype=torch.bool), "state": state, "objects": objects}
    loss, m = world_model_loss(model, batch)
    assert np.isfinite(m["body"]) and np.isfinite(m["ol_body"])
    # the same clips without any tracker: the points are unknown everywhere and the loss still runs
    body, known = model.sense(state, (B, T))
    assert not known[..., 9:].any() and known[..., :9].all()


def test_a_planner_feeds_the_tracker_to_the_filter() -> None:
    """``WorldModelCost.observe`` passes the tracked objects on: the filtered state's points are the sensed ones."""
    from egoworld.imagine.plan import WorldModelCost

    model = WorldModel(_cfg()).eval()
    env = SimEnv(task="pick_place", width=32, height=32)
    try:
        obs, _ = env.reset(seed=1)
    finally:
        env.close()
    wm = WorldModelCost(model, 1.0, context=2)
    wm.observe(obs["image"], state=obs["state"], objects=obs["objects"])
    b = wm.start_state().b[0]
    body, _ = model.sense(torch.from_numpy(obs["state"])[None, None], (1, 1),
                          objects=torch.from_numpy(obs["objects"])[None, None])
    assert torch.allclose(b, body[0, 0], atol=1e-6)
    wm.reset()
    wm.observe(obs["image"], state=obs["state"])  # no tracker: the points come from the model, not the sensor
    assert not torch.allclose(wm.start_state().b[0, 9:], body[0, 0, 9:])
    cost = wm(np.zeros((3, 6, 20)))
    assert cost.shape == (3,) and np.isfinite(cost).all()


def test_the_track_cost_is_hand_to_object_plus_object_to_goal() -> None:
    from egoworld.imagine.plan import Objective, imagined_cost, track_distances
    from egoworld.model.rssm import State

    model = WorldModel(_cfg()).eval()
    b = torch.zeros(1, 1, 15)
    b[..., 0:3] = torch.tensor([0.0, 0.0, 0.4]) / EGO_POS_SCALE  # left wrist
    b[..., 3:6] = torch.tensor([0.3, 0.0, 0.4]) / EGO_POS_SCALE  # right wrist
    b[..., 9:12] = torch.tensor([0.3, 0.1, 0.4]) / EGO_POS_SCALE  # object: 0.1 m from the right wrist
    b[..., 12:15] = torch.tensor([0.3, 0.1, 0.7]) / EGO_POS_SCALE  # goal: 0.3 m from the object
    st = State(torch.zeros(1, 1, 32), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), b)
    assert float(track_distances(model, st)[0, 0]) == pytest.approx(0.4, abs=1e-5)
    # drawn 0.05 m behind the object (away from the goal): the right wrist is then 0.15 m from where a push starts
    assert float(track_distances(model, st, approach=0.05)[0, 0]) == pytest.approx(
        float(np.hypot(0.1, 0.05)) + 0.3, abs=1e-5)
    # a plan that moves the hands toward the object costs less than one that moves them away
    start = State(torch.zeros(1, 32), torch.zeros(1, 4, 4), torch.full((1, 4, 4), 0.25), b[:, 0])
    model.set_action_stats(torch.zeros(138), torch.ones(138))
    controls = np.zeros((2, 6, 20))
    controls[0, :, 13:16] = [0.0, 0.01, 0.0]  # the right wrist moves down, toward the object
    controls[1, :, 13:16] = [0.0, -0.01, 0.0]  # ... and up, away from it
    c = imagined_cost(model, start, controls, 1.0, Objective(progress=0.0, track=1.0))
    assert c[0] < c[1]
    # a per-task approach (`--approach push=0.05`): push's hand drawn behind the object, the others' to it
    per_task = Objective(progress=0.0, track=1.0, approach=Objective.parse_approach("push=0.05"))
    assert per_task.for_task("push").approach == 0.05 and per_task.for_task("open_drawer").approach == 0.0
    assert np.allclose(imagined_cost(model, start, controls, 1.0, per_task.for_task("open_drawer")), c)
    assert not np.allclose(imagined_cost(model, start, controls, 1.0, per_task.for_task("push")), c)
    with pytest.raises(ValueError, match="for_task"):
        imagined_cost(model, start, controls, 1.0, per_task)
    with pytest.raises(ValueError, match="unknown task 'pusj'"):
        Objective.parse_approach("pusj=0.05")
    with pytest.raises(ValueError, match="track_points"):
        track_distances(WorldModel(_cfg(track_points=0)), st)


def _body_at_point(model: WorldModel, move: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A body whose right wrist sits on the object (0.4 m ahead), the goal 0.2 m to its left, and an action
    that moves only the right wrist by ``move`` metres along x (the head stays)."""
    b = torch.zeros(1, 15)
    b[0, 3:6] = torch.tensor([0.0, 0.0, 0.4]) / EGO_POS_SCALE  # right wrist
    b[0, 0:3] = torch.tensor([-0.3, 0.2, 0.3]) / EGO_POS_SCALE  # left wrist, far away
    b[0, 6:9] = torch.tensor([0.0, 1.0, 0.0])
    b[0, 9:12] = b[0, 3:6]
    b[0, 12:15] = torch.tensor([-0.2, 0.0, 0.4]) / EGO_POS_SCALE
    control = np.zeros(20)
    control[13] = move
    act = torch.from_numpy(control_to_action(control[None])[0].astype(np.float32))[None]
    model.set_action_stats(torch.zeros(act.shape[-1]), torch.ones(act.shape[-1]))
    return b, act


def test_the_contact_step_moves_a_point_with_the_hand_only_as_far_as_its_gate_opens() -> None:
    """Without ``contact`` a point stays put in the world however the hand moves; with it, a point is shifted
    by gate × the wrist's move — near closed at initialisation, the whole move when the gate is open."""
    from egoworld.model.rssm import State

    torch.manual_seed(0)
    plain = WorldModel(_cfg())
    b, act = _body_at_point(plain, 0.03)
    assert torch.equal(plain.rssm.kinematics(b, act)[:, 9:], b[:, 9:])
    model = WorldModel(_cfg().replace(contact=True))
    b, act = _body_at_point(model, 0.03)
    wrist_move = (model.rssm.kinematics(b, act)[0, 3:6] - b[0, 3:6]) * EGO_POS_SCALE
    assert abs(float(wrist_move[0]) - 0.03) < 1e-5
    shift = (model.rssm.kinematics(b, act)[0, 9:12] - b[0, 9:12]) * EGO_POS_SCALE
    assert 0.0 < float(shift[0]) < 0.1 * 0.03  # the gate starts near closed
    with torch.no_grad():
        model.rssm.contact_net[-1].bias.fill_(20.0)  # open
    shift = (model.rssm.kinematics(b, act)[0, 9:12] - b[0, 9:12]) * EGO_POS_SCALE
    assert torch.allclose(shift, wrist_move, atol=1e-6)
    # with contact, the learned residual moves the body's own part, never the points
    with torch.no_grad():
        model.rssm.body_net[-1].bias.fill_(0.5)
    prev = State(torch.zeros(1, 32), torch.zeros(1, 4, 4), torch.full((1, 4, 4), 0.25), b)
    stepped = model.rssm.body_step(prev, torch.zeros(1, 32), model.norm_action(act))
    assert torch.allclose(stepped[:, 9:], model.rssm.kinematics(b, model.norm_action(act))[:, 9:])
    assert not torch.allclose(stepped[:, :9], model.rssm.kinematics(b, model.norm_action(act))[:, :9])
    # the gate is learned: the loss reaches it
    B, T = 2, 5
    state = torch.zeros(B, T, 21)
    state[..., 3] = 1.0
    batch = {"image": torch.randint(0, 255, (B, T, 3, 32, 32), dtype=torch.uint8), "action": torch.randn(B, T, 138) * 0.01,
             "action_valid": torch.ones(B, T, dtype=torch.bool), "state": state, "objects": torch.randn(B, T, 6) * 0.1}
    model = WorldModel(_cfg().replace(contact=True))
    loss, _ = world_model_loss(model, batch)
    loss.backward()
    assert float(model.rssm.contact_net[-1].weight.grad.abs().sum()) > 0  # (the layers below start at zero gradient)


def test_contact_directions_push_along_the_normal_only_into_the_point_and_slide_toward_the_other() -> None:
    """``contact_dirs``: the normal gate moves a point by the part of the wrist's move that goes into it (a
    hand pulling away leaves it), the line gate by the part along the way to the other tracked point."""
    torch.manual_seed(0)
    model = WorldModel(_cfg().replace(contact=True, contact_dirs=True))

    def shift(move: float, gates: tuple[float, float, float]) -> torch.Tensor:
        b, act = _body_at_point(model, move)
        b[0, 9:12] = (torch.tensor([0.0, 0.0, 0.4]) + torch.tensor([0.03, 0.04, 0.0])) / EGO_POS_SCALE  # n = (0.6, 0.8, 0)
        b[0, 12:15] = b[0, 9:12] + torch.tensor([0.0, 0.0, -0.2]) / EGO_POS_SCALE  # u = (0, 0, −1)
        with torch.no_grad():
            model.rssm.contact_net[-1].weight.zero_()
            model.rssm.contact_net[-1].bias.copy_(torch.tensor(gates))
        return (model.rssm.kinematics(b, act)[0, 9:12] - b[0, 9:12]) * EGO_POS_SCALE

    into = shift(0.03, (-30.0, 30.0, -30.0))
    assert torch.allclose(into, 0.03 * 0.6 * torch.tensor([0.6, 0.8, 0.0]), atol=1e-6)  # (d·n) n
    assert torch.allclose(shift(-0.03, (-30.0, 30.0, -30.0)), torch.zeros(3), atol=1e-6)  # pulling away: stays
    assert torch.allclose(shift(0.03, (-30.0, -30.0, 30.0)), torch.zeros(3), atol=1e-6)  # d ⟂ u: no slide
    assert torch.allclose(shift(0.03, (30.0, -30.0, -30.0)), torch.tensor([0.03, 0.0, 0.0]), atol=1e-6)  # held: all of d


def test_frames_where_a_tracked_point_moves_weigh_more_in_the_body_loss() -> None:
    model = WorldModel(_cfg().replace(track_motion_weight=4.0))
    state = torch.zeros(1, 4, 21)
    state[..., 3] = 1.0
    objects = torch.zeros(1, 4, 6)
    objects[0, 2:, 0] = 0.05  # the object moves between frames 1 and 2; the goal never does
    _, w = model.body_target(state, objects)
    assert torch.equal(w[0, :, 9:12], torch.tensor([[1.0] * 3, [1.0] * 3, [5.0] * 3, [1.0] * 3]))
    assert bool((w[0, :, 12:] == 1).all()) and bool((w[0, :, :9] == 1).all())


def test_progress_read_from_the_tracked_points_is_reach_then_the_share_of_the_way_to_the_goal() -> None:
    """``track_progress``: 0.2 × nearness of the nearest hand + 0.8 × the share of the start's object-to-goal
    distance closed — what the dream's reward is the change of with ``progress="track"``."""
    from egoworld.imagine.dream import check_progress, dream_progress
    from egoworld.imagine.plan import track_progress

    model = WorldModel(_cfg()).eval()
    b, _ = _body_at_point(model, 0.0)  # the right wrist on the object, the goal 0.2 m away
    feat = torch.cat([torch.zeros(1, model.cfg.deter + model.cfg.stoch_size), b], -1)
    assert float(track_progress(model, feat, feat)[0]) == pytest.approx(0.2, abs=1e-5)
    halfway = feat.clone()
    halfway[0, -6:-3] = (b[0, 9:12] + b[0, 12:15]) / 2  # the object moved half the way; the hand stayed
    expected = 0.2 * (1 - 0.1 / 0.6) + 0.8 * 0.5
    assert float(dream_progress(model, halfway, feat, "track")[0]) == pytest.approx(expected, abs=1e-5)
    assert float(dream_progress(model, halfway, feat, "head")[0]) == float(model.reward(halfway)[0])
    with pytest.raises(ValueError, match="track_points"):
        check_progress(WorldModel(_cfg(track_points=0)), "track")
    # and the dream ends where the points say the task is done, not where the continuation head says so
    from egoworld.capture.sim.tasks import TRACK_DONE
    from egoworld.imagine.dream import dream_continue

    assert float(dream_continue(model, halfway, "track", "push")[0]) == 1.0  # 0.1 m to go
    near = feat.clone()
    near[0, -6:-3] = b[0, 12:15] + torch.tensor([TRACK_DONE["push"] * 0.9, 0.0, 0.0]) / EGO_POS_SCALE
    assert float(dream_continue(model, near, "track", "push")[0]) == 0.0
    assert float(dream_continue(model, near, "track", "stack")[0]) == 1.0  # a block 4.5 cm off its base is not on it
    assert float(dream_continue(model, near, "head")[0]) == float(model.cont(near)[0])
    with pytest.raises(ValueError, match="needs its task"):
        dream_continue(model, near, "track")
    with pytest.raises(ValueError, match="unknown progress"):
        check_progress(model, "nope")


def test_the_tracked_object_error_splits_clips_by_whether_the_object_moved() -> None:
    """``egoworld eval``'s tracked-object error, from the states the open-loop pass imagines anyway: a model
    whose points stay put in the world errs by the kinematic step's (≈ 0) on a clip where the object did not
    move, and by how far it moved ("stays put") on one where it did."""
    from egoworld.evaluate.openloop import rollout_metrics

    model = WorldModel(_cfg()).eval()
    model.set_action_stats(torch.zeros(138), torch.ones(138))
    B, T = 2, 16
    state = torch.zeros(B, T, 21)
    state[..., 3] = 1.0
    state[..., 2] = 1.5
    state[..., 10] = state[..., 17] = 1.0  # unit wrist quaternions
    objects = torch.zeros(B, T, 6)
    objects[..., 1] = 0.5
    objects[..., 4] = 0.7
    objects[1, 8:, 0] = 0.10  # clip 1: the object slides 10 cm during the imagined steps
    batch = {"image": torch.randint(0, 255, (B, T, 3, 32, 32), dtype=torch.uint8), "action": torch.zeros(B, T, 138),
             "action_valid": torch.ones(B, T, dtype=torch.bool), "state": state, "objects": objects}
    r = rollout_metrics(model, [batch], 8, 8, None, None)["tracked_object"]
    assert r["horizon"] == 8 and r["moved"]["n"] == 1 and r["still"]["n"] == 1
    assert r["still"]["median_drift_m"] < 1e-4
    assert abs(r["moved"]["median_m"] - 0.10) < 1e-4 and abs(r["moved"]["stays_put_m"] - 0.10) < 1e-4
    assert "tracked_object" not in rollout_metrics(WorldModel(_cfg(track_points=0)).eval(), [batch], 8, 8, None, None)
