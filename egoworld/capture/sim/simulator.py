"""The egocentric rig in MuJoCo: a head camera and two hands driven by the control, physics between.

One ``step(control)`` is one video frame: the head and wrists move along a smooth (C¹ Hermite)
path to the poses the control asks for, over ``substeps`` physics steps, fingers curl with the
grip, and a palm whose grip closes near an object grasps it (a weld that follows the palm).
The whole state — physics, mocap poses, grasps, the motion tangents — is one vector
(``get_state``/``set_state``), so any recorded frame can be restored and replayed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation as R

from egoworld import quat as Q
from egoworld.actions import BodyPose, apply_control
from egoworld.body import FINGERS, SIDES, finger_keypoints

GRASP_CLOSE = 0.55  # grip above which a palm grasps what is within reach
GRASP_OPEN = 0.35  # grip below which it lets go
GRASP_REACH = 0.035  # extra distance beyond an object's radius at which a grasp still takes
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION | mujoco.mjtState.mjSTATE_WARMSTART


def _hermite(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the start tangent and of the chord for a C¹ path that ends on the target."""
    return s**3 - 2 * s**2 + s, 2 * s**2 - s**3


_Z_TO = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # v ↦ (v_z, −v_y, v_x, 0)
_W = np.array([1.0, 0.0, 0.0, 0.0])


def _z_to(v: np.ndarray) -> np.ndarray:
    """Quaternions (wxyz) turning +z onto the unit vectors v (..., 3)."""
    q = v @ _Z_TO  # exact: one non-zero (±1) term per column
    q += _W
    n = np.sqrt(np.einsum("...i,...i->...", q, q))[..., None]
    flip = n[..., 0] < 1e-9
    if flip.any():
        q[flip] = (0.0, 1.0, 0.0, 0.0)
        n[flip] = 1.0
    return q / n


def _unit(q: np.ndarray) -> np.ndarray:
    return q / np.sqrt(np.einsum("...i,...i->...", q, q))[..., None]


def _left_mul(qs) -> np.ndarray:
    """The matrices L with p·q = L q (before normalising), one per quaternion p in ``qs``."""
    return np.array([[[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]] for w, x, y, z in qs])


# Row-major rotation matrix of a unit quaternion as a quadratic form: M_ab = Σ_ij q_i q_j _MATRIX[4i + j, 3a + b]
_MATRIX = np.zeros((4, 4, 9))
for _i, _j, _k, _v in [(0, 0, 0, 1), (1, 1, 0, 1), (2, 2, 0, -1), (3, 3, 0, -1), (1, 2, 1, 1), (2, 1, 1, 1), (0, 3, 1, -1),
                       (3, 0, 1, -1), (1, 3, 2, 1), (3, 1, 2, 1), (0, 2, 2, 1), (2, 0, 2, 1), (1, 2, 3, 1), (2, 1, 3, 1),
                       (0, 3, 3, 1), (3, 0, 3, 1), (0, 0, 4, 1), (1, 1, 4, -1), (2, 2, 4, 1), (3, 3, 4, -1), (2, 3, 5, 1),
                       (3, 2, 5, 1), (0, 1, 5, -1), (1, 0, 5, -1), (1, 3, 6, 1), (3, 1, 6, 1), (0, 2, 6, -1), (2, 0, 6, -1),
                       (2, 3, 7, 1), (3, 2, 7, 1), (0, 1, 7, 1), (1, 0, 7, 1), (0, 0, 8, 1), (1, 1, 8, -1), (2, 2, 8, -1),
                       (3, 3, 8, 1)]:
    _MATRIX[_i, _j, _k] = _v
_MATRIX = _MATRIX.reshape(16, 9)


def _qmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4)."""
    return ((q[..., :, None] * q[..., None, :]).reshape(q.shape[:-1] + (16,)) @ _MATRIX).reshape(q.shape[:-1] + (3, 3))


def _from_rotvec(rv: np.ndarray) -> np.ndarray:
    """Quaternions of rotation vectors (..., 3)."""
    a = np.maximum(np.sqrt(np.einsum("...i,...i->...", rv, rv)), 1e-300)  # sin(a/2)/a → 1/2 at 0: exact below 1e-3 too
    q = np.empty(rv.shape[:-1] + (4,))
    q[..., 0] = np.cos(0.5 * a)
    q[..., 1:] = (np.sin(0.5 * a) / a)[..., None] * rv
    return q


@dataclass
class Kinematics:
    """The body's motion at every physics step of a frame (the ground truth the sensors sample)."""

    head_p: np.ndarray  # (n, 3)
    head_q: np.ndarray  # (n, 4)
    wrist_p: np.ndarray  # (n, 2, 3)
    wrist_q: np.ndarray  # (n, 2, 4)
    grip: np.ndarray  # (n, 2)


class Simulator:
    """A MuJoCo scene plus the rig that moves in it; see the module docstring."""

    def __init__(self, xml: str, hand_scale: float, fps: float, substeps: int, width: int, height: int) -> None:
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.fps, self.substeps, self.hand_scale = fps, substeps, hand_scale
        self.width, self.height = width, height
        m = self.model
        bid = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n)  # noqa: E731
        self._head = m.body_mocapid[bid("head")]
        self._palm = np.array([m.body_mocapid[bid(f"{s}_palm")] for s in SIDES])
        self._fingers = np.array([[m.body_mocapid[bid(f"{s}_{f}{j}")] for f in FINGERS for j in range(3)] for s in SIDES])
        self._palm_body = np.array([bid(f"{s}_palm") for s in SIDES])
        self._grasp_site = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, f"{s}_grasp") for s in SIDES])
        self._rig = np.array([self._head, *self._palm])  # mocap ids of head, left palm, right palm
        # Mocap bodies in the order step() computes them (head, palms, then left and right fingers):
        # when these are all the mocap bodies, one gather puts a frame's poses in MuJoCo's order.
        order = np.concatenate([self._rig, self._fingers.ravel()])
        self._mocap_order = np.argsort(order) if np.array_equal(np.sort(order), np.arange(m.nmocap)) else None
        # Graspable bodies: free objects (reach = their radius) and the drawer (its handle site).
        self.graspable: list[str] = []
        self._weld: dict[tuple[int, str], int] = {}
        for i in range(m.neq):
            name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_EQUALITY, i)
            _, side, body = name.split("_", 2)
            self._weld[(SIDES.index(side), body)] = i
            if body not in self.graspable:
                self.graspable.append(body)
        self._grasp_radius = {}
        for g in self.graspable:
            b = bid(g)
            geoms = [k for k in range(m.ngeom) if m.geom_bodyid[k] == b]
            self._grasp_radius[g] = 0.012 if g == "drawer" else float(max(m.geom_rbound[k] for k in geoms)) * 0.8
        self._drawer_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "drawer_grasp")
        self._grasp_body = [bid(g) for g in self.graspable]
        self._substep_weights: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.grips = np.zeros(2)
        self.grasped = np.full(2, -1)
        self.tangent = np.zeros((3, 6))  # last frame's head/wrist deltas: world translation, local rotvec
        self._renderer: mujoco.Renderer | None = None
        self._camera = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "head_cam")

    # -- body pose ---------------------------------------------------------------------------
    def body_pose(self) -> BodyPose:
        d = self.data
        return BodyPose(d.mocap_pos[self._head].copy(), d.mocap_quat[self._head].copy(),
                        d.mocap_pos[self._palm].copy(), d.mocap_quat[self._palm].copy())

    def wrist_positions(self) -> np.ndarray:
        """Both palms' world positions (2, 3), a copy: ``body_pose().wrist_p`` without the rest (per-step use)."""
        return self.data.mocap_pos[self._palm]

    def _finger_poses(self, wrist_p: np.ndarray, wrist_q: np.ndarray, grips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Finger-segment mocap poses for a batch of wrist poses (n, 2, ·) and grips (n, 2)."""
        n = len(grips)
        kp = finger_keypoints(grips, self.hand_scale, "right")[..., 1:, :].reshape(n, 2, 5, 4, 3)  # wrist frame
        a, b = kp[..., :3, :], kp[..., 1:, :]  # the ends of each finger's three segments
        seg = np.concatenate([b - a, a + b], axis=2).reshape(n, 2, 30, 3)
        rot = _qmat(_unit(wrist_q))
        rot[:, SIDES.index("left"), :, 1] *= -1.0  # the left hand is the mirror image (y → −y)
        seg = seg @ rot.swapaxes(-1, -2)  # into the world frame
        ab, mid = seg[:, :, :15], seg[:, :, 15:]
        mid *= 0.5
        mid += wrist_p[:, :, None]
        return mid, _z_to(ab / np.sqrt(np.einsum("...i,...i->...", ab, ab))[..., None])

    def set_body(self, head_p, head_q, wrist_p, wrist_q, grips) -> None:
        """Place the head, palms and finger segments (fingers follow the grip)."""
        fp, fq = self._finger_poses(np.asarray(wrist_p)[None], np.asarray(wrist_q)[None], np.asarray(grips, dtype=np.float64)[None])
        self._place(head_p, head_q, wrist_p, wrist_q, fp[0], fq[0])
        self.grips = np.asarray(grips, dtype=np.float64).copy()

    def _place(self, head_p, head_q, wrist_p, wrist_q, finger_p, finger_q) -> None:
        d = self.data
        d.mocap_pos[self._head], d.mocap_quat[self._head] = head_p, head_q
        d.mocap_pos[self._palm], d.mocap_quat[self._palm] = wrist_p, wrist_q
        d.mocap_pos[self._fingers] = finger_p
        d.mocap_quat[self._fingers] = finger_q

    def keypoints_world(self) -> np.ndarray:
        """The 21 keypoints of each hand in the world frame (2, 21, 3)."""
        d = self.data
        kp = finger_keypoints(self.grips, self.hand_scale, "right")  # (2, 21, 3)
        kp[SIDES.index("left"), :, 1] *= -1.0
        return d.mocap_pos[self._palm][:, None] + kp @ _qmat(_unit(d.mocap_quat[self._palm])).swapaxes(-1, -2)

    # -- stepping ----------------------------------------------------------------------------
    def step(self, control: np.ndarray) -> Kinematics:
        """Execute one frame's control; returns the body's motion at each physics step."""
        m, d, n = self.model, self.data, self.substeps
        if self._substep_weights is None or self._substep_weights[0] != n:
            s = np.arange(1, n + 1) / n
            w_tan, w_chord = _hermite(s)
            self._substep_weights = (n, s[:, None], w_tan[:, None, None], w_chord[:, None, None])
        _, s, w_tan, w_chord = self._substep_weights
        mocap_p, mocap_q = d.mocap_pos, d.mocap_quat
        p0 = mocap_p[self._rig]  # head, left wrist, right wrist
        q_raw = mocap_q[self._rig]
        q0 = [Q.unit(q) for q in q_raw.tolist()]
        target, g1 = apply_control(BodyPose(p0[0], q_raw[0], p0[1:], q_raw[1:]), control)
        p1 = np.concatenate([target.head_p[None], target.wrist_p])
        q1 = [tuple(target.head_q), *map(tuple, target.wrist_q)]
        g0 = self.grips
        # The C¹ path: position and local rotation vector from the start, along tangent and chord.
        chord = np.empty((3, 6))
        chord[:, :3] = p1 - p0
        chord[:, 3:] = [Q.as_rotvec(Q.mul(Q.conj(q0[i]), q1[i])) for i in range(3)]
        path = w_tan * self.tangent + w_chord * chord  # (n, 3, 6)
        pos = path[..., :3] + p0
        dq = _from_rotvec(path[..., 3:])  # (n, 3, 4)
        quat = _unit((_left_mul(q0) @ dq[..., None])[..., 0])  # q0 · Δq
        pos[-1], quat[-1] = p1, q1
        grip = g0 + (g1 - g0) * s
        finger_p, finger_q = self._finger_poses(pos[:, 1:], quat[:, 1:], grip)
        if self._mocap_order is not None:
            all_p = np.concatenate([pos, finger_p.reshape(n, 30, 3)], axis=1)[:, self._mocap_order]
            all_q = np.concatenate([quat, finger_q.reshape(n, 30, 4)], axis=1)[:, self._mocap_order]
        else:  # other mocap bodies in the scene stay where they are
            all_p = np.repeat(mocap_p[None], n, axis=0)
            all_q = np.repeat(mocap_q[None], n, axis=0)
            all_p[:, self._rig], all_q[:, self._rig] = pos, quat
            all_p[:, self._fingers], all_q[:, self._fingers] = finger_p, finger_q
        for k in range(n):
            mocap_p[:] = all_p[k]
            mocap_q[:] = all_q[k]
            mujoco.mj_step(m, d)
        self.grips = grip[-1].copy()
        self.tangent = chord
        self._update_grasps()
        return Kinematics(pos[:, 0].copy(), quat[:, 0].copy(), pos[:, 1:].copy(), quat[:, 1:].copy(), grip)

    def _anchor(self, gi: int) -> np.ndarray:
        """Where graspable ``gi`` is taken: the drawer by its handle, an object by its centre."""
        if self.graspable[gi] == "drawer":
            return self.data.site_xpos[self._drawer_site]
        return self.data.xpos[self._grasp_body[gi]]

    def _update_grasps(self) -> None:
        d, m = self.data, self.model
        for s in range(2):
            if self.grasped[s] >= 0 and self.grips[s] <= GRASP_OPEN:
                d.eq_active[self._weld[(s, self.graspable[self.grasped[s]])]] = 0
                self.grasped[s] = -1
            elif self.grasped[s] < 0 and self.grips[s] >= GRASP_CLOSE:
                p = d.site_xpos[self._grasp_site[s]]
                taken = set(self.grasped[self.grasped >= 0].tolist())
                best, best_d = -1, np.inf
                for gi, g in enumerate(self.graspable):
                    v = self._anchor(gi) - p
                    dist = math.sqrt(v.dot(v)) - self._grasp_radius[g]  # np.linalg.norm(v), without its overhead
                    if gi not in taken and dist < GRASP_REACH and dist < best_d:
                        best, best_d = gi, dist
                if best >= 0:
                    eq = self._weld[(s, self.graspable[best])]
                    b1, b2 = self._palm_body[s], self._grasp_body[best]
                    r1 = R.from_quat(d.xquat[b1], scalar_first=True)
                    r2 = R.from_quat(d.xquat[b2], scalar_first=True)
                    m.eq_data[eq, 3:6] = r1.inv().apply(d.xpos[b2] - d.xpos[b1])
                    m.eq_data[eq, 6:10] = (r1.inv() * r2).as_quat(scalar_first=True)
                    d.eq_active[eq] = 1
                    self.grasped[s] = best

    def grasped_name(self, side: int) -> str | None:
        return None if self.grasped[side] < 0 else self.graspable[self.grasped[side]]

    # -- state -------------------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """Everything needed to continue exactly from here, as one float64 vector."""
        n = mujoco.mj_stateSize(self.model, _STATE_SPEC)
        phys = np.empty(n)
        mujoco.mj_getState(self.model, self.data, phys, _STATE_SPEC)
        return np.concatenate([phys, self.model.eq_data[:, 3:10].ravel(), self.grips, self.grasped.astype(np.float64), self.tangent.ravel()])

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, dtype=np.float64)
        n = mujoco.mj_stateSize(self.model, _STATE_SPEC)
        ne = self.model.neq * 7
        if state.shape != (n + ne + 2 + 2 + 18,):
            raise ValueError(f"state has {state.shape[0]} values, this scene needs {n + ne + 22}")
        mujoco.mj_setState(self.model, self.data, state[:n], _STATE_SPEC)
        self.model.eq_data[:, 3:10] = state[n : n + ne].reshape(-1, 7)
        self.grips = state[n + ne : n + ne + 2].copy()
        self.grasped = state[n + ne + 2 : n + ne + 4].astype(int)
        self.tangent = state[n + ne + 4 :].reshape(3, 6).copy()
        mujoco.mj_forward(self.model, self.data)

    # -- rendering ---------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The head camera's view (H, W, 3) uint8."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        self._renderer.update_scene(self.data, camera=self._camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
