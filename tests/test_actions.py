"""The action definition: control ↔ action ↔ poses are consistent inverses."""
import numpy as np
import pytest

from egoworld.actions import (ACTION_DIM, CONTROL_DIM, BodyPose, action_names, action_to_control, apply_control,
                              clip_control, compute_actions, control_between, control_names, control_to_action)
from egoworld.body import KEYPOINT_NAMES, SIDES, finger_keypoints, fit_grip, hand_scale


def _rollout(controls, scale=1.0):
    pose = BodyPose(np.array([0.1, -1.0, 1.6]), np.array([1.0, 0, 0, 0]), np.array([[-0.2, -0.8, 1.0], [0.2, -0.8, 1.0]]),
                    np.array([[0.7071, 0, 0, 0.7071], [0.7071, 0, 0, 0.7071]]))
    poses, grips = [pose], [np.array([0.0, 0.0])]
    for c in controls:
        pose, g = apply_control(pose, c)
        poses.append(pose)
        grips.append(g)
    seq = BodyPose(*[np.stack([getattr(p, k) for p in poses]) for k in ("head_p", "head_q", "wrist_p", "wrist_q")])
    fingers = np.stack([np.stack([finger_keypoints(g[s], scale, side) for s, side in enumerate(SIDES)]) for g in grips])
    return seq, fingers


def test_dimensions_and_names():
    assert ACTION_DIM == 138 and CONTROL_DIM == 20
    assert len(action_names()) == ACTION_DIM and len(set(action_names())) == ACTION_DIM
    assert len(control_names()) == CONTROL_DIM
    assert len(KEYPOINT_NAMES) == 21 and KEYPOINT_NAMES[0] == "wrist"


def test_actions_from_poses_equal_control_mapping():
    rng = np.random.default_rng(1)
    controls = []
    for _ in range(20):
        c = clip_control(rng.normal(0, 0.04, CONTROL_DIM))
        c[[12, 19]] = rng.uniform(0, 1, 2)
        controls.append(c)
    controls = np.array(controls)
    seq, fingers = _rollout(controls, scale=1.07)
    actions = compute_actions(seq, fingers)
    assert actions.shape == (20, ACTION_DIM)
    np.testing.assert_allclose(actions, control_to_action(controls, 1.07), atol=1e-10)
    np.testing.assert_allclose(action_to_control(actions), controls, atol=1e-8)


def test_control_between_inverts_apply_control():
    rng = np.random.default_rng(2)
    seq, _ = _rollout([clip_control(rng.normal(0, 0.03, CONTROL_DIM)) for _ in range(3)])
    a = BodyPose(seq.head_p[1], seq.head_q[1], seq.wrist_p[1], seq.wrist_q[1])
    c = clip_control(rng.normal(0, 0.03, CONTROL_DIM))
    c[[12, 19]] = [0.3, 0.9]
    b, g = apply_control(a, c)
    np.testing.assert_allclose(control_between(a, b, g), c, atol=1e-10)


def test_head_delta_is_in_camera_frame():
    # the head looks along world +y (camera z); moving 'forward' 0.1 m in the camera frame moves +y in the world
    from scipy.spatial.transform import Rotation as R

    look_y = R.from_matrix(np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])).as_quat(scalar_first=True)  # cam z → world +y
    pose = BodyPose(np.zeros(3), look_y, np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)))
    c = np.zeros(CONTROL_DIM)
    c[2] = 0.1
    nxt, _ = apply_control(pose, c)
    np.testing.assert_allclose(nxt.head_p, [0, 0.1, 0], atol=1e-9)


@pytest.mark.parametrize("side", SIDES)
def test_grip_fit_inverts_hand_model(side):
    g = np.linspace(0, 1, 11)
    kp = finger_keypoints(g, 0.93, side)
    np.testing.assert_allclose(fit_grip(kp, side), g, atol=1e-6)
    np.testing.assert_allclose(hand_scale(kp), 0.93)
    # a closed hand's fingertips are nearer the wrist than an open hand's
    tips = [4, 8, 12, 16, 20]
    assert np.all(np.linalg.norm(kp[-1, tips], axis=-1)[1:] < np.linalg.norm(kp[0, tips], axis=-1)[1:])


def test_batched_quaternions_agree_with_scipy():
    """quat.batch_* (used by the action module and sync) is SciPy's Rotation math, to rounding, at every angle."""
    from scipy.spatial.transform import Rotation as R

    from egoworld import quat as Q

    rng = np.random.default_rng(4)
    angles = np.concatenate([[0.0, 1e-9, 1e-4, 1e-3, 2e-3, np.pi - 1e-6, np.pi], rng.uniform(0, np.pi, 200)])
    axes = rng.normal(size=(len(angles), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    a = R.from_rotvec(axes * angles[:, None])
    b = R.from_rotvec(rng.normal(size=(len(angles), 3)))
    qa = a.as_quat(scalar_first=True) * rng.choice([-1.0, 1.0], (len(angles), 1)) * 1.7  # any sign and scale
    qb = b.as_quat(scalar_first=True)
    ua = Q.batch_unit(qa)
    np.testing.assert_allclose(Q.batch_rotvec(ua), a.as_rotvec(), atol=1e-12)
    np.testing.assert_allclose(Q.batch_rotvec(Q.batch_mul(ua, qb)), (a * b).as_rotvec(), atol=1e-12)
    np.testing.assert_allclose(Q.batch_rotvec(Q.batch_mul(Q.batch_conj(ua), qb)), (a.inv() * b).as_rotvec(), atol=1e-12)
    v = rng.normal(size=(len(angles), 3))
    np.testing.assert_allclose(Q.batch_rotate(ua, v), a.apply(v), atol=1e-12)
