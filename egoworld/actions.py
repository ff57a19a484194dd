"""The one definition of what the body did: the full action and the low-dimensional control.

``action[t]`` is what the body did between frame t and t+1 (138 numbers):

* head ego-motion in the camera frame of t: translation (3, m) + axis-angle (3, rad),
  i.e. ``T_head(t+1) = T_head(t) · Δ``;
* per hand (left, then right): the wrist's motion expressed in the camera frame of t —
  translation (3) and axis-angle (3) of the world-frame increment rotated into camera axes —
  then the 20 finger keypoints (thumb…little, 4 each) in the wrist frame at t+1 (60).

The *control* (20 numbers) is what a planner, a policy or the scripted person commands and the
simulator executes: head delta (6), then per hand wrist delta (6) + grip in [0, 1] (1).
``control_to_action`` maps control → action through the hand model; ``action_to_control``
inverts it (grip fitted to the finger keypoints), so recorded data can be replayed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoworld import quat as Q
from egoworld.body import SIDES, finger_keypoints, fit_grip

HEAD = slice(0, 6)
HAND_DIM = 66
FINGERS_DIM = 60
ACTION_DIM = 6 + 2 * HAND_DIM
CONTROL_DIM = 6 + 2 * 7

# Per-frame limits of the control (at 30 fps: 1.5 m/s head, 4.5 rad/s turns, 1.8 m/s wrists).
CONTROL_LOW = np.array([-0.05] * 3 + [-0.15] * 3 + ([-0.06] * 3 + [-0.3] * 3 + [0.0]) * 2)
CONTROL_HIGH = -CONTROL_LOW
CONTROL_HIGH[[12, 19]] = 1.0


def hand_slice(side: int) -> slice:
    """Columns of hand ``side`` (0 left, 1 right) in the action vector."""
    return slice(6 + side * HAND_DIM, 6 + (side + 1) * HAND_DIM)


def action_names() -> list[str]:
    names = [f"head_{k}" for k in ("tx", "ty", "tz", "rx", "ry", "rz")]
    for side in SIDES:
        names += [f"{side}_wrist_{k}" for k in ("tx", "ty", "tz", "rx", "ry", "rz")]
        names += [f"{side}_kp{i:02d}_{a}" for i in range(1, 21) for a in "xyz"]
    return names


def control_names() -> list[str]:
    names = [f"head_{k}" for k in ("tx", "ty", "tz", "rx", "ry", "rz")]
    for side in SIDES:
        names += [f"{side}_wrist_{k}" for k in ("tx", "ty", "tz", "rx", "ry", "rz")] + [f"{side}_grip"]
    return names


@dataclass
class BodyPose:
    """Head and wrist poses in the world frame (one time step or a batch along axis 0)."""

    head_p: np.ndarray  # (..., 3)
    head_q: np.ndarray  # (..., 4) wxyz
    wrist_p: np.ndarray  # (..., 2, 3)
    wrist_q: np.ndarray  # (..., 2, 4)


def _deltas(pose: BodyPose) -> np.ndarray:
    """Head and wrist deltas (N-1, 3, 6) from a pose sequence of length N."""
    hq, wq = Q.batch_unit(pose.head_q), Q.batch_unit(pose.wrist_q)
    rc_inv = Q.batch_conj(hq[:-1])
    out = np.zeros((len(pose.head_p) - 1, 3, 6))
    out[:, 0, :3] = Q.batch_rotate(rc_inv, pose.head_p[1:] - pose.head_p[:-1])
    out[:, 0, 3:] = Q.batch_rotvec(Q.batch_mul(rc_inv, hq[1:]))
    for s in range(2):
        out[:, 1 + s, :3] = Q.batch_rotate(rc_inv, pose.wrist_p[1:, s] - pose.wrist_p[:-1, s])
        chain = Q.batch_mul(Q.batch_mul(Q.batch_mul(rc_inv, wq[1:, s]), Q.batch_conj(wq[:-1, s])), hq[:-1])
        out[:, 1 + s, 3:] = Q.batch_rotvec(chain)
    return out


def compute_actions(pose: BodyPose, fingers: np.ndarray) -> np.ndarray:
    """Actions (N-1, 138) from N poses and wrist-frame finger keypoints ``fingers`` (N, 2, 21, 3)."""
    d = _deltas(pose)
    act = np.zeros((len(d), ACTION_DIM))
    act[:, HEAD] = d[:, 0]
    for s in range(2):
        sl = hand_slice(s)
        act[:, sl.start : sl.start + 6] = d[:, 1 + s]
        act[:, sl.start + 6 : sl.stop] = fingers[1:, s, 1:, :].reshape(len(d), FINGERS_DIM)
    return act


def control_to_action(control: np.ndarray, hand_scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Full action (..., 138) for a control (..., 20) and the person's hand scale (scalar or (2,))."""
    control = np.asarray(control, dtype=np.float64)
    scale = np.broadcast_to(np.asarray(hand_scale, dtype=np.float64), (2,))
    act = np.zeros(control.shape[:-1] + (ACTION_DIM,))
    act[..., HEAD] = control[..., :6]
    for s, side in enumerate(SIDES):
        c = control[..., 6 + 7 * s : 13 + 7 * s]
        sl = hand_slice(s)
        act[..., sl.start : sl.start + 6] = c[..., :6]
        kp = finger_keypoints(c[..., 6], scale[s], side)
        act[..., sl.start + 6 : sl.stop] = kp[..., 1:, :].reshape(control.shape[:-1] + (FINGERS_DIM,))
    return act


def action_to_control(action: np.ndarray) -> np.ndarray:
    """The control (..., 20) that best explains an action (..., 138): deltas copied, grip fitted."""
    action = np.asarray(action, dtype=np.float64)
    ctrl = np.zeros(action.shape[:-1] + (CONTROL_DIM,))
    ctrl[..., :6] = action[..., HEAD]
    for s, side in enumerate(SIDES):
        sl = hand_slice(s)
        ctrl[..., 6 + 7 * s : 12 + 7 * s] = action[..., sl.start : sl.start + 6]
        fingers = action[..., sl.start + 6 : sl.stop].reshape(action.shape[:-1] + (20, 3))
        kp = np.concatenate([np.zeros(fingers.shape[:-2] + (1, 3)), fingers], axis=-2)
        ctrl[..., 12 + 7 * s] = fit_grip(kp, side)
    return ctrl


def apply_control(pose: BodyPose, control: np.ndarray) -> tuple[BodyPose, np.ndarray]:
    """Integrate one control step from a single pose: the next pose and the grips (2,).

    The exact inverse of ``_deltas``: ``compute_actions`` on the result gives back the deltas.
    """
    c = np.asarray(control, dtype=np.float64).tolist()
    # Plain-float quaternions (egoworld.quat): the simulator calls this once per frame, and SciPy's
    # per-object overhead was most of a frame's cost.
    rc = Q.unit(np.asarray(pose.head_q, dtype=np.float64).tolist())
    rc_inv = Q.conj(rc)
    head_p = pose.head_p + np.array(Q.rotate(rc, c[0:3]))
    head_q = np.array(Q.canonical(Q.mul(rc, Q.from_rotvec(c[3:6]))))
    wrist_p = np.empty((2, 3))
    wrist_q = np.empty((2, 4))
    for s in range(2):
        k = 6 + 7 * s
        wrist_p[s] = pose.wrist_p[s] + np.array(Q.rotate(rc, c[k:k + 3]))
        turn = Q.mul(rc, Q.from_rotvec(c[k + 3:k + 6]))  # rc · Δ · rc⁻¹ · q_wrist
        wrist_q[s] = Q.canonical(Q.mul(Q.mul(turn, rc_inv), Q.unit(np.asarray(pose.wrist_q[s], dtype=np.float64).tolist())))
    grips = np.clip([c[12], c[19]], 0.0, 1.0)
    return BodyPose(head_p, head_q, wrist_p, wrist_q), grips


def clip_control(control: np.ndarray) -> np.ndarray:
    """Clip a control to the executable range (per-frame speed limits, grip in [0, 1])."""
    return np.clip(control, CONTROL_LOW, CONTROL_HIGH)


def control_between(a: BodyPose, b: BodyPose, grips: np.ndarray) -> np.ndarray:
    """The control that takes the body from pose ``a`` to pose ``b`` with the given grips (2,)."""
    seq = BodyPose(np.stack([a.head_p, b.head_p]), np.stack([a.head_q, b.head_q]),
                   np.stack([a.wrist_p, b.wrist_p]), np.stack([a.wrist_q, b.wrist_q]))
    d = _deltas(seq)[0]
    return np.concatenate([d[0], d[1], [grips[0]], d[2], [grips[1]]])
