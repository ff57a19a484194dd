"""The body state definition: named slices agree with the store's column names, and pose ↔ state are inverses."""
import numpy as np
import torch

from egoworld.actions import BodyPose
from egoworld.dataset import layout as L
from egoworld.state import (HEAD, HEAD_P, HEAD_Q, POSE, STATE_DIM, STATE_NAMES, body_pose, body_state, wrist, wrist_p,
                            wrist_q)


def test_slices_name_the_stores_state_columns():
    assert STATE_DIM == 21 and len(STATE_NAMES) == STATE_DIM == len(set(STATE_NAMES))
    assert L.features(64, 64, 30.0, False)["observation.state"]["names"] == STATE_NAMES  # what the store writes
    names = np.array(STATE_NAMES)
    assert list(names[HEAD_P]) == ["head_px", "head_py", "head_pz"]
    assert list(names[HEAD_Q]) == ["head_qw", "head_qx", "head_qy", "head_qz"]
    assert list(names[HEAD]) == [f"head_{c}" for c in POSE]
    for s, side in enumerate(("left", "right")):
        assert list(names[wrist(s)]) == [f"{side}_wrist_{c}" for c in POSE]
        assert list(names[wrist_p(s)]) == [f"{side}_wrist_{c}" for c in ("px", "py", "pz")]
        assert list(names[wrist_q(s)]) == [f"{side}_wrist_{c}" for c in ("qw", "qx", "qy", "qz")]
    covered = np.zeros(STATE_DIM, int)
    for sl in (HEAD_P, HEAD_Q, wrist_p(0), wrist_q(0), wrist_p(1), wrist_q(1)):
        covered[sl] += 1
    assert (covered == 1).all()  # the six parts tile the state exactly once


def test_pose_and_state_are_inverses_and_slices_work_on_tensors():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 3, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    pose = BodyPose(rng.normal(size=(5, 3)), q[:, 0], rng.normal(size=(5, 2, 3)), q[:, 1:])
    states = np.stack([body_state(BodyPose(pose.head_p[i], pose.head_q[i], pose.wrist_p[i], pose.wrist_q[i]))
                       for i in range(5)])
    assert states.shape == (5, STATE_DIM) and states.dtype == np.float32
    back = body_pose(states)
    for k in ("head_p", "head_q", "wrist_p", "wrist_q"):
        np.testing.assert_allclose(getattr(back, k), getattr(pose, k), atol=1e-6)
    t = torch.from_numpy(states)
    assert torch.equal(t[..., wrist_q(1)], torch.from_numpy(states[:, 17:21]))
    assert torch.equal(t[..., HEAD_Q], torch.from_numpy(states[:, 3:7]))


def test_the_simulator_reports_its_body_in_this_layout():
    import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
    from egoworld.capture.sim.env import SimEnv

    env = SimEnv("push", width=32, height=32, max_steps=3)
    try:
        obs, _ = env.reset(seed=0)
        pose = env.sim.body_pose()
    finally:
        env.close()
    st = obs["state"]
    assert env.observation_space["state"].shape == (STATE_DIM,)
    np.testing.assert_allclose(st[HEAD_P], pose.head_p, atol=1e-6)
    np.testing.assert_allclose(st[wrist_q(1)], pose.wrist_q[1], atol=1e-6)
