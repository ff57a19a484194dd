"""The egocentric rig in MuJoCo: a head camera and two hands driven by the control, physics between.

One ``step(control)`` is one video frame: the head and wrists move along a smooth (C¹ Hermite)
path to the poses the control asks for, over ``substeps`` physics steps, fingers curl with the
grip, and a palm whose grip closes near an object grasps it (a weld that follows the palm).
The whole state — physics, mocap poses, grasps, the motion tangents — is one vector
(``get_state``/``set_state``), so any recorded frame can be restored and replayed.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation as R

from egoworld.actions import BodyPose, apply_control
from egoworld.body import FINGERS, SIDES, finger_keypoints

_SEG_FROM = np.array([1 + 4 * f + j for f in range(5) for j in range(3)])  # keypoint at each segment's base
GRASP_CLOSE = 0.55  # grip above which a palm grasps what is within reach
GRASP_OPEN = 0.35  # grip below which it lets go
GRASP_REACH = 0.035  # extra distance beyond an object's radius at which a grasp still takes
_STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION | mujoco.mjtState.mjSTATE_WARMSTART


def _hermite(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the start tangent and of the chord for a C¹ path that ends on the target."""
    return s**3 - 2 * s**2 + s, 2 * s**2 - s**3


def _z_to(v: np.ndarray) -> np.ndarray:
    """Quaternions (wxyz) turning +z onto the unit vectors v (..., 3)."""
    q = np.stack([1.0 + v[..., 2], -v[..., 1], v[..., 0], np.zeros(v.shape[:-1])], axis=-1)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    flip = n[..., 0] < 1e-9
    q[flip] = (0.0, 1.0, 0.0, 0.0)
    n[flip] = 1.0
    return q / n


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

    def _finger_poses(self, wrist_p: np.ndarray, wrist_q: np.ndarray, grips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Finger-segment mocap poses for a batch of wrist poses (n, 2, ·) and grips (n, 2)."""
        n = len(wrist_p)
        pos = np.empty((n, 2, 15, 3))
        quat = np.empty((n, 2, 15, 4))
        for s, side in enumerate(SIDES):
            kp = finger_keypoints(grips[:, s], self.hand_scale, side)  # (n, 21, 3)
            rw = R.from_quat(np.repeat(wrist_q[:, s], 21, axis=0), scalar_first=True)
            kw = wrist_p[:, s, None] + rw.apply(kp.reshape(-1, 3)).reshape(n, 21, 3)
            a = kw[:, _SEG_FROM]
            b = kw[:, _SEG_FROM + 1]
            v = (b - a) / np.linalg.norm(b - a, axis=-1, keepdims=True)
            pos[:, s], quat[:, s] = (a + b) / 2, _z_to(v)
        return pos, quat

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
        pose = self.body_pose()
        out = np.empty((2, 21, 3))
        for s, side in enumerate(SIDES):
            out[s] = pose.wrist_p[s] + R.from_quat(pose.wrist_q[s], scalar_first=True).apply(
                finger_keypoints(self.grips[s], self.hand_scale, side))
        return out

    # -- stepping ----------------------------------------------------------------------------
    def step(self, control: np.ndarray) -> Kinematics:
        """Execute one frame's control; returns the body's motion at each physics step."""
        start = self.body_pose()
        g0 = self.grips.copy()
        target, g1 = apply_control(start, control)
        n = self.substeps
        s = np.arange(1, n + 1) / n
        w_tan, w_chord = _hermite(s)
        rh0 = R.from_quat(start.head_q, scalar_first=True)
        rw0 = [R.from_quat(start.wrist_q[i], scalar_first=True) for i in range(2)]
        chord = np.zeros((3, 6))
        chord[0, :3] = target.head_p - start.head_p
        chord[0, 3:] = (rh0.inv() * R.from_quat(target.head_q, scalar_first=True)).as_rotvec()
        for i in range(2):
            chord[1 + i, :3] = target.wrist_p[i] - start.wrist_p[i]
            chord[1 + i, 3:] = (rw0[i].inv() * R.from_quat(target.wrist_q[i], scalar_first=True)).as_rotvec()
        path = w_tan[:, None, None] * self.tangent[None] + w_chord[:, None, None] * chord[None]  # (n, 3, 6)
        head_p = start.head_p + path[:, 0, :3]
        head_q = (rh0 * R.from_rotvec(path[:, 0, 3:])).as_quat(scalar_first=True)
        wrist_p = start.wrist_p[None] + path[:, 1:, :3]
        wrist_q = np.stack([(rw0[i] * R.from_rotvec(path[:, 1 + i, 3:])).as_quat(scalar_first=True) for i in range(2)], axis=1)
        grip = g0[None] + (g1 - g0)[None] * s[:, None]
        head_p[-1], head_q[-1], wrist_p[-1], wrist_q[-1] = target.head_p, target.head_q, target.wrist_p, target.wrist_q
        finger_p, finger_q = self._finger_poses(wrist_p, wrist_q, grip)
        for k in range(n):
            self._place(head_p[k], head_q[k], wrist_p[k], wrist_q[k], finger_p[k], finger_q[k])
            mujoco.mj_step(self.model, self.data)
        self.grips = grip[-1].copy()
        self.tangent = chord
        self._update_grasps()
        return Kinematics(head_p, head_q, wrist_p, wrist_q, grip)

    def _anchor(self, body: str) -> np.ndarray:
        if body == "drawer":
            return self.data.site_xpos[self._drawer_site]
        return self.data.xpos[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, body)]

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
                    dist = np.linalg.norm(self._anchor(g) - p) - self._grasp_radius[g]
                    if gi not in taken and dist < GRASP_REACH and dist < best_d:
                        best, best_d = gi, dist
                if best >= 0:
                    eq = self._weld[(s, self.graspable[best])]
                    b1, b2 = self._palm_body[s], mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, self.graspable[best])
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
