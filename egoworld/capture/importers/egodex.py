"""EgoDex-style recordings: ``<n>.mp4`` + ``<n>.hdf5`` with per-frame ARKit transforms.

The HDF5 holds one row per video frame: ``/transforms/camera`` (N, 4, 4) camera-to-world,
``/transforms/<joint>`` (N, 4, 4) for ARKit's hand skeleton (``leftHand``, ``leftThumbKnuckle``,
``leftIndexFingerKnuckle`` …), optional ``/confidences/<joint>`` (N,) and
``/camera/intrinsic`` (3, 3). ARKit's world is y-up and its camera looks down −z (OpenGL axes);
ours is z-up with OpenCV camera axes, so world points map by ``(x, y, z) → (x, −z, y)`` and the
camera rotation gets ``diag(1, −1, −1)`` on the right.

Joints → our 21 keypoints: wrist ← ``Hand``; thumb cmc/mcp/ip/tip ← ``ThumbKnuckle``,
``ThumbIntermediateBase``, ``ThumbIntermediateTip``, ``ThumbTip``; each finger mcp/pip/dip/tip
← ``Knuckle``, ``IntermediateBase``, ``IntermediateTip``, ``Tip`` (``Metacarpal`` is dropped).
The wrist orientation is rebuilt from the keypoints in our wrist convention (ARKit's joint axes
differ). Rows whose joint confidence is below ``min_confidence`` are left out (a gap, as a
tracker drop-out would be).

The poses are stamped with their frame's PTS on a separate ``tracker`` clock (nominally equal to
the camera's): sync then *checks* the pairing instead of assuming it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from egoworld.capture.importers.common import (
    ImportFormatError,
    build_meta,
    check_finite,
    consent_record,
    hands_table,
    head_pose_table,
    probe_source_video,
    session_id_for,
    video_copier,
    wrist_frame_from_keypoints,
)

FINGER_JOINTS = {
    "thumb": ("ThumbKnuckle", "ThumbIntermediateBase", "ThumbIntermediateTip", "ThumbTip"),
    "index": ("IndexFingerKnuckle", "IndexFingerIntermediateBase", "IndexFingerIntermediateTip", "IndexFingerTip"),
    "middle": ("MiddleFingerKnuckle", "MiddleFingerIntermediateBase", "MiddleFingerIntermediateTip", "MiddleFingerTip"),
    "ring": ("RingFingerKnuckle", "RingFingerIntermediateBase", "RingFingerIntermediateTip", "RingFingerTip"),
    "little": ("LittleFingerKnuckle", "LittleFingerIntermediateBase", "LittleFingerIntermediateTip", "LittleFingerTip"),
}
# ARKit (y up) world → ours (z up): x → x, y → z, z → −y.
R_OURS_ARKIT = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
R_GL_CV = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes expressed in the OpenGL camera's


def joint_names(side: str) -> list[str]:
    """The 21 ARKit joint names for our keypoint order (wrist, thumb ×4, index … little ×4)."""
    return [f"{side}Hand"] + [f"{side}{j}" for f in ("thumb", "index", "middle", "ring", "little") for j in FINGER_JOINTS[f]]


def _transforms(f, name: str, n: int, path: Path) -> np.ndarray:
    key = f"transforms/{name}"
    if key not in f:
        raise ImportFormatError(path, f"missing dataset /{key} (EgoDex layout: /transforms/<joint> N×4×4)")
    a = np.asarray(f[key][()], dtype=np.float64)
    if a.shape != (n, 4, 4):
        raise ImportFormatError(path, f"/{key} has shape {a.shape}, expected ({n}, 4, 4) — one transform per video frame")
    return check_finite(a, path, f"/{key}")


def import_egodex(src: str | Path, out: str | Path, hdf5: str | Path | None = None, consent: str | None = None,
                  min_confidence: float = 0.0, session_id: str | None = None) -> Path:
    """``<n>.mp4`` + ``<n>.hdf5`` → a session with head_pose and hands on the ``tracker`` clock."""
    import h5py

    src = Path(src)
    h5 = Path(hdf5) if hdf5 else src.with_suffix(".hdf5")
    video = probe_source_video(src)
    if not h5.exists():
        raise ImportFormatError(h5, "HDF5 file is missing (EgoDex pairs <n>.mp4 with <n>.hdf5)")
    pts = video["pts_ns"]
    n = len(pts)
    try:
        f = h5py.File(h5, "r")
    except OSError as e:
        raise ImportFormatError(h5, f"not a readable HDF5 file ({e})") from e
    with f:
        if "transforms/camera" not in f:
            raise ImportFormatError(h5, "missing dataset /transforms/camera")
        n_h5 = f["transforms/camera"].shape[0]
        if n_h5 != n:
            raise ImportFormatError(h5, f"has {n_h5} camera transforms but {src.name} has {n} frames — they must pair 1:1")
        cam = _transforms(f, "camera", n, h5)
        if "camera/intrinsic" in f:
            K = np.asarray(f["camera/intrinsic"][()], dtype=np.float64).reshape(3, 3)
        else:
            raise ImportFormatError(h5, "missing dataset /camera/intrinsic (3×3)")
        hands = {}
        for side in ("left", "right"):
            names = joint_names(side)
            if not all(f"transforms/{j}" in f for j in names):
                missing = [j for j in names if f"transforms/{j}" not in f]
                if len(missing) < len(names):
                    raise ImportFormatError(h5, f"{side} hand is incomplete: missing /transforms/{missing[0]} (and {len(missing) - 1} more)")
                continue
            T = np.stack([_transforms(f, j, n, h5) for j in names], axis=1)  # (n, 21, 4, 4)
            conf = np.ones(n)
            for j in names:
                if f"confidences/{j}" in f:
                    conf = np.minimum(conf, np.asarray(f[f"confidences/{j}"][()], dtype=np.float64))
            hands[side] = (T[..., :3, 3], conf)
    # camera pose → ours
    R_wc = R_OURS_ARKIT @ cam[:, :3, :3] @ R_GL_CV
    p = cam[:, :3, 3] @ R_OURS_ARKIT.T
    from scipy.spatial.transform import Rotation

    det = np.linalg.det(cam[:, :3, :3])
    if np.any(np.abs(det - 1) > 1e-3):
        i = int(np.flatnonzero(np.abs(det - 1) > 1e-3)[0])
        raise ImportFormatError(h5, f"/transforms/camera row {i} is not a rigid transform (det {det[i]:.3f})")
    q = Rotation.from_matrix(R_wc).as_quat(scalar_first=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    streams = {"head_pose": head_pose_table(pts, p, q)}
    rows = []
    for side, (kp_arkit, conf) in hands.items():
        keep = conf >= min_confidence
        if keep.sum() < 2:
            continue
        kp = kp_arkit[keep] @ R_OURS_ARKIT.T
        wq = wrist_frame_from_keypoints(kp, side)
        rows.append((pts[keep], side, kp[:, 0], wq, kp))
    meta_streams = {"head_pose": {"file": "motion/head_pose.parquet", "clock": "tracker", "rate_hz": video["fps"]}}
    if rows:
        streams["hands"] = hands_table(rows)
        meta_streams["hands"] = {"file": "motion/hands.parquet", "clock": "tracker", "rate_hz": video["fps"]}
    fps = video["fps"] or 30.0
    consent_rec, status = consent_record(consent, subject_id="unknown")
    meta = build_meta(
        session_id=session_id or session_id_for(src), source="egodex", fps=fps, width=video["width"], height=video["height"],
        duration_s=float((pts[-1] - pts[0]) * 1e-9 + 1 / fps),
        camera={"intrinsics": {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}, "source": f"{h5.name}:/camera/intrinsic"},
        streams=meta_streams,
        clocks={"tracker": {"device": "ARKit tracking", "description": "one pose per video frame, stamped with that frame's PTS"}},
        consent_status=status, task={"id": src.parent.name or "unknown"},
        provenance={"video": str(src), "hdf5": str(h5), "min_confidence": min_confidence,
                    "axes": "ARKit y-up world → z-up; OpenGL camera → OpenCV"},
    )
    from egoworld.session import write_session

    return write_session(out, meta, consent_rec, streams, video_copier(src, fps))
