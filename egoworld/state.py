"""The one definition of the body state: where the head and both wrists are, in the world frame.

``state[t]`` is the body's pose at frame t (21 numbers; the loader's ``state``, the store's
``observation.state``, the simulator's and the dream's ``obs["state"]``):

* head: position (3, m), then orientation as a unit quaternion w, x, y, z (4);
* per hand (left, then right): the wrist's position (3) and quaternion (4), same conventions.

The slices below name these columns, so code reads ``state[..., HEAD_Q]`` rather than
``state[..., 3:7]``; they work on NumPy arrays and torch tensors alike. Where the *action* is the
body's motion between frames (``egoworld.actions``), the state is the pose it moved from.
"""
from __future__ import annotations

import numpy as np

from egoworld.actions import BodyPose
from egoworld.body import SIDES

POSE = ("px", "py", "pz", "qw", "qx", "qy", "qz")  # one pose: position, then quaternion (wxyz)
POSE_DIM = len(POSE)
STATE_NAMES = [f"head_{c}" for c in POSE] + [f"{side}_wrist_{c}" for side in SIDES for c in POSE]
STATE_DIM = len(STATE_NAMES)  # 21
# Bounds of every state number in an observation space: metres (rooms are < 6 m across); quaternion
# parts are within ±1.
STATE_BOUND = 10.0

HEAD = slice(0, POSE_DIM)
HEAD_P = slice(0, 3)
HEAD_Q = slice(3, POSE_DIM)


def wrist(side: int) -> slice:
    """Columns of wrist ``side``'s pose (0 left, 1 right): position, then quaternion."""
    start = POSE_DIM * (1 + side)
    return slice(start, start + POSE_DIM)


def wrist_p(side: int) -> slice:
    """Columns of wrist ``side``'s position (0 left, 1 right)."""
    return slice(wrist(side).start, wrist(side).start + 3)


def wrist_q(side: int) -> slice:
    """Columns of wrist ``side``'s quaternion (0 left, 1 right), w first."""
    return slice(wrist(side).start + 3, wrist(side).stop)


def body_state(pose: BodyPose) -> np.ndarray:
    """The state (21,) float32 of one pose — the exact inverse of ``body_pose``."""
    return np.concatenate([pose.head_p, pose.head_q, pose.wrist_p[0], pose.wrist_q[0],
                           pose.wrist_p[1], pose.wrist_q[1]]).astype(np.float32)


def body_pose(state: np.ndarray) -> BodyPose:
    """The pose of states (..., 21): head p (..., 3), q (..., 4); wrists p (..., 2, 3), q (..., 2, 4)."""
    state = np.asarray(state, dtype=np.float64)
    return BodyPose(state[..., HEAD_P], state[..., HEAD_Q],
                    np.stack([state[..., wrist_p(s)] for s in range(2)], -2),
                    np.stack([state[..., wrist_q(s)] for s in range(2)], -2))
