"""The aligned episode: one row per video frame, motion resampled onto the frame times, and the action.

Columns (docs/sync.md is the reference):

* ``frame_index`` (row number), ``frame_nominal`` (index on the nominal frame grid, so dropped
  frames show as jumps), ``t_video_ns`` (the frame's PTS on the camera clock);
* ``t_<clock>_ns`` per motion clock: where on that clock the frame was sampled;
* ``head_px … head_qz`` + ``head_valid`` (False throughout when the session has no ``head_pose``
  stream, e.g. an IMU-only action camera; the pose columns then hold origin / identity);
* per side (``left_``/``right_``): ``wrist_px … wrist_qz``, ``keypoints`` (63, world frame),
  ``valid``;
* ``imu_gx … imu_az`` + ``imu_valid`` when the session has an IMU whose clock synced;
* ``action`` (fixed-size list of 138 float64, ``egoworld.actions``) and ``action_valid``;
* ``sync_residual`` (rad/s): video vs motion rotation-rate mismatch for [t, t+1] after sync.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from egoworld._atomic import write_parquet
from egoworld.actions import ACTION_DIM, BodyPose, compute_actions
from egoworld.body import SIDES
from egoworld.session import Session
from egoworld.state import POSE
from egoworld.sync.estimate import ClockFit
from egoworld.sync.resample import interp_linear, resample_hand, slerp

DROP_FACTOR = 1.5  # a PTS gap above this many frame periods means frames were dropped


def write_episode(path: str | Path, table: pa.Table) -> None:
    """Write the aligned episode atomically and deterministically (same table → same bytes).

    Snappy without dictionary encoding: the columns are float samples that hardly repeat, so
    dictionaries only cost time (−80 % write time against zstd with dictionaries, and a smaller
    file: most bytes are float64 noise that no codec shrinks much).
    """
    write_parquet(path, table, compression="snappy", use_dictionary=False)


def nominal_indices(pts_ns: np.ndarray, fps: float) -> np.ndarray:
    """Each frame's index on the nominal grid (first frame = 0)."""
    return np.round((pts_ns - pts_ns[0]) * 1e-9 * fps).astype(np.int64)


def dropped_frames(pts_ns: np.ndarray, fps: float) -> list[int]:
    """Nominal frame numbers that the video lacks (gaps in the PTS)."""
    nom = nominal_indices(pts_ns, fps)
    return sorted(set(range(int(nom[-1]) + 1)) - set(nom.tolist())) if len(nom) else []


def aligned_table(session: Session, pts_ns: np.ndarray, fits: dict[str, ClockFit],
                  frame_residual: np.ndarray) -> pa.Table:
    """Resample every stream whose clock synced onto the frame times and add the actions."""
    meta = session.meta
    n = len(pts_ns)
    t_video_s = pts_ns * 1e-9
    cols: dict[str, pa.Array | np.ndarray] = {
        "frame_index": np.arange(n, dtype=np.int64),
        "frame_nominal": nominal_indices(pts_ns, session.fps),
        "t_video_ns": pts_ns.astype(np.int64),
    }

    def stream_time_ns(name: str) -> np.ndarray:
        return np.round(fits[meta["streams"][name]["clock"]].to_stream_s(t_video_s) * 1e9).astype(np.int64)

    for clock, fit in fits.items():
        if fit.segments:
            cols[f"t_{clock}_ns"] = np.round(fit.to_stream_s(t_video_s) * 1e9).astype(np.int64)

    # Resample on times relative to the first frame: ns → s in float64 keeps µs precision even
    # for epoch-based clocks.
    ref = int(pts_ns[0])

    def rel(t_ns: np.ndarray) -> np.ndarray:
        return (np.asarray(t_ns, dtype=np.int64) - ref) * 1e-9

    # Head pose: only when the session has a head tracker whose clock synced. An action camera's
    # session (``egoworld import camera``) has only an IMU: a gyro gives orientation change but no
    # position, so there is no head pose to resample. The columns stay (the episode store reads a
    # fixed schema) with the convention used for a missing hand — origin, identity quaternion —
    # and ``head_valid = False``, which keeps every action of such an episode invalid.
    head_p = np.zeros((n, 3))
    head_q = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    head_valid = np.zeros(n, bool)
    head_fit = fits.get(meta["streams"]["head_pose"]["clock"]) if "head_pose" in meta["streams"] else None
    if head_fit is not None and head_fit.segments:
        h = session.arrays("head_pose")
        tq = rel(stream_time_ns("head_pose"))
        head_p, vp = interp_linear(rel(h["t_ns"]), np.c_[h["px"], h["py"], h["pz"]], tq)
        head_q, vq = slerp(rel(h["t_ns"]), np.c_[h["qw"], h["qx"], h["qy"], h["qz"]], tq)
        head_valid = vp & vq
    for i, c in enumerate(POSE):
        cols[f"head_{c}"] = head_p[:, i] if i < 3 else head_q[:, i - 3]
    cols["head_valid"] = head_valid

    wrist_p = np.zeros((n, 2, 3))
    wrist_q = np.tile([1.0, 0.0, 0.0, 0.0], (n, 2, 1))
    fingers = np.zeros((n, 2, 21, 3))
    hand_valid = np.zeros((n, 2), bool)
    kp_world = np.zeros((n, 2, 21, 3))
    hands_fit = fits.get(meta["streams"]["hands"]["clock"]) if "hands" in meta["streams"] else None
    if hands_fit is not None and hands_fit.segments:
        a = session.arrays("hands")
        tq = rel(stream_time_ns("hands"))
        for s, side in enumerate(SIDES):
            m = a["side"] == side
            if m.sum() < 2:
                continue
            r = resample_hand(rel(a["t_ns"][m]), np.c_[a["wrist_px"][m], a["wrist_py"][m], a["wrist_pz"][m]],
                              np.c_[a["wrist_qw"][m], a["wrist_qx"][m], a["wrist_qy"][m], a["wrist_qz"][m]],
                              a["keypoints"][m], tq)
            wrist_p[:, s], wrist_q[:, s], fingers[:, s], kp_world[:, s], hand_valid[:, s] = (
                r["p"], r["q"], r["kp_wrist"], r["kp_world"], r["valid"])
    for s, side in enumerate(SIDES):
        for i, c in enumerate(POSE):
            cols[f"{side}_wrist_{c}"] = wrist_p[:, s, i] if i < 3 else wrist_q[:, s, i - 3]
        cols[f"{side}_keypoints"] = pa.FixedSizeListArray.from_arrays(pa.array(kp_world[:, s].reshape(-1)), 63)
        cols[f"{side}_valid"] = hand_valid[:, s]

    imu_fit = fits.get(meta["streams"]["imu"]["clock"]) if "imu" in meta["streams"] else None
    if imu_fit is not None and imu_fit.segments:
        a = session.arrays("imu")
        keys = ("gx", "gy", "gz", "ax", "ay", "az")
        x, v = interp_linear(rel(a["t_ns"]), np.c_[tuple(a[k] for k in keys)], rel(stream_time_ns("imu")))
        for i, k in enumerate(keys):
            cols[f"imu_{k}"] = x[:, i]
        cols["imu_valid"] = v

    action = np.zeros((n, ACTION_DIM))
    action_valid = np.zeros(n, bool)
    if n > 1:
        pose = BodyPose(head_p, head_q, wrist_p, wrist_q)
        action[:-1] = compute_actions(pose, fingers)
        ok = head_valid & hand_valid.all(1)
        gap_ok = np.diff(pts_ns) <= DROP_FACTOR * 1e9 / session.fps
        action_valid[:-1] = ok[:-1] & ok[1:] & gap_ok
    cols["action"] = pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), ACTION_DIM)
    cols["action_valid"] = action_valid
    res = np.full(n, np.nan)
    res[: len(frame_residual)] = frame_residual
    cols["sync_residual"] = res
    return pa.table(cols)
