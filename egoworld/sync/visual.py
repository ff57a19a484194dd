"""Camera rotation between consecutive video frames, from the pixels alone (the video clock's evidence).

Why rotation: it is the one motion quantity that the video, a gyro and a head tracker all measure
directly and without scale — a pinhole camera turning by R moves every feature by the homography
K·Rᵀ·K⁻¹ whatever the depth, whereas translation needs depth. Per frame pair we track corners
with pyramidal Lucas–Kanade, undistort them into bearing vectors with the rig intrinsics and fit
the rotation that best maps one bundle onto the other (Kabsch/SVD) with outlier rejection, which
drops the moving hands and most of the translation parallax of near objects.

Frames are decoded to grey (the luma plane, no conversion) and halved until ≤ ``MAX_SIDE``
(intrinsics scaled with them): 64–128 px is plenty for rotation, and the per-frame cost is
what decides sync's speed (bench/sync.py, docs/sync.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from egoworld.video import VideoError, pts_to_ns

SUPPORTED_CAMERAS = ("pinhole", "opencv", "opencv_fisheye")
MIN_TRACKS = 12  # fewer inliers than this → no rotation for that frame pair
# Speed knobs (bench/sync.py; LK costs ~2 µs per point per pyramid level, decoding ~0.15 ms a frame):
MAX_CORNERS = 100  # corners tracked per frame pair; 40–60 are ~30 % faster but drift errors on 8 s
REDETECT_BELOW = 60  # clips grow past 100 ppm (measured) — re-detect when fewer than this survive
MAX_SIDE = 128  # frames are halved (pyrDown) until their longer side is ≤ this
LK_WIN, LK_LEVELS, LK_ITERS = (9, 9), 2, 10  # a 2-level pyramid covers ±8 px of motion per frame at 128 px
FAST_DECODE = False  # skip deblocking: −10 % decode, but median timing error 0.10 → 0.12 ms on the synthetic set
_PLANAR_8BIT = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray")


@dataclass
class VisualRotations:
    """Per consecutive pair of *existing* frames (i, i+1): the rotation R_iᵀ·R_{i+1} in camera-i axes."""

    pts_ns: np.ndarray  # (N,) every frame's PTS on the camera clock
    rotvec: np.ndarray  # (N-1, 3) axis-angle (rad); zeros where not valid
    valid: np.ndarray  # (N-1,) bool: enough inlier tracks for a trustworthy fit
    inliers: np.ndarray  # (N-1,) int: inlier tracks used
    fit_px: np.ndarray  # (N-1,) RMS reprojection residual of the inliers (pixels at the working size)
    width: int  # working size (after downscaling)
    height: int
    b0: np.ndarray | None = None  # (N-1, M, 3) bearings of the tracks in frame i (padded) ...
    b1: np.ndarray | None = None  # ... and in frame i+1
    mask: np.ndarray | None = None  # (N-1, M) inlier tracks of the rotation-only fit
    noise_rad: float = 0.0  # one tracking pixel in radians (at the working size)

    @property
    def t0_s(self) -> np.ndarray:
        return self.pts_ns[:-1] * 1e-9

    @property
    def t1_s(self) -> np.ndarray:
        return self.pts_ns[1:] * 1e-9


def camera_matrix(rig: dict, scale: float = 1.0) -> np.ndarray:
    k = rig["intrinsics"]
    return np.array([[k["fx"] * scale, 0, k["cx"] * scale], [0, k["fy"] * scale, k["cy"] * scale], [0, 0, 1.0]])


def _bearings(pts: np.ndarray, K: np.ndarray, dist: np.ndarray, model: str) -> np.ndarray:
    """Pixel coordinates (M, 2) → unit bearing vectors (M, 3) in the camera frame."""
    p = pts.reshape(-1, 1, 2).astype(np.float64)
    if model == "opencv_fisheye":
        xy = cv2.fisheye.undistortPoints(p, K, dist[:4]).reshape(-1, 2)
    elif np.any(dist):
        xy = cv2.undistortPoints(p, K, dist).reshape(-1, 2)
    else:
        xy = (pts.reshape(-1, 2) - K[:2, 2]) / np.diag(K)[:2]
    b = np.c_[xy, np.ones(len(xy))]
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def fit_rotations(b0: np.ndarray, b1: np.ndarray, w: np.ndarray, tol: float, iters: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Batched Kabsch: per pair n, the rotation Q_n with b1 ≈ Q_n·b0, re-fitted on inliers.

    ``b0``, ``b1``: (N, M, 3) bearings padded to M tracks, ``w``: (N, M) bool of real tracks.
    ``tol`` is the smallest inlier threshold in radians (about one pixel); the threshold adapts to
    3× the robust spread of each pair's residuals, so moving hands and near-object parallax drop
    out. Returns Q (N, 3, 3) and the inlier mask (N, M). Batched because a Python loop over
    frame pairs would cost more than the tracking itself.
    """
    mask = w.copy()
    Q = np.broadcast_to(np.eye(3), (len(b0), 3, 3)).copy()
    for _ in range(iters):
        H = np.swapaxes(b0 * mask[..., None], 1, 2) @ b1
        U, _, Vt = np.linalg.svd(H)
        V = np.swapaxes(Vt, 1, 2)
        d = np.sign(np.linalg.det(V @ np.swapaxes(U, 1, 2)))
        V[:, :, 2] *= d[:, None]
        Q = V @ np.swapaxes(U, 1, 2)
        err = np.linalg.norm(b1 - b0 @ np.swapaxes(Q, 1, 2), axis=2)
        med = np.nanmedian(np.where(mask, err, np.nan), axis=1)
        med = np.nan_to_num(med, nan=0.0)
        mask = w & (err < np.maximum(tol, 4.0 * med)[:, None])
    return Q, mask


def _open_gray(path: Path):
    if not path.exists():
        raise VideoError(f"{path}: video file is missing")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{path}: not a readable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: contains no video stream")
    return container


def iter_gray(path: str | Path, threads: int = 1, fast: bool = False):
    """Decode to 8-bit grey (the luma plane itself: no colour conversion, no copy) with PTS in ns.

    The yielded array is a strided view of the decoder's frame (row stride = the plane's line
    size); it stays valid as long as it is referenced. ``fast`` skips H.264's in-loop deblocking
    filter: ~10–15 % less decode time for pictures that differ from the exact decode by a little
    blockiness, which corner tracking does not notice (sync uses it; anything that keeps pixels
    must not).
    """
    path = Path(path)
    c = _open_gray(path)
    try:
        s = c.streams.video[0]
        s.thread_count = threads
        if fast:
            s.codec_context.options = {"skip_loop_filter": "all"}
        if s.codec_context.pix_fmt not in _PLANAR_8BIT + (None,):
            raise VideoError(f"{path}: pixel format {s.codec_context.pix_fmt!r} is not 8-bit planar YUV")
        try:
            for frame in c.decode(s):
                plane = frame.planes[0]
                luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
                yield pts_to_ns(frame.pts, frame.time_base), luma
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: video stream is corrupt ({e})") from e
    finally:
        c.close()


def working_scale(width: int, height: int, max_side: int) -> int:
    """How many times to halve the frame (cv2.pyrDown) so that its longer side is ≤ ``max_side``.

    Halving, not an arbitrary resize: pyrDown is a fixed 5-tap filter (≈ 10 µs a frame at 256²),
    where an area resize to a non-integer factor costs 5–10× more — as much as the tracking.
    """
    k = 0
    while max(width, height) > max_side * (1 << k):
        k += 1
    return k


def visual_rotations(video: str | Path, rig: dict, max_side: int = MAX_SIDE) -> VisualRotations:
    """Track corners through the video and fit the inter-frame rotation of every consecutive pair.

    Per frame the work is one pyramidal LK call on ≤ ``MAX_CORNERS`` points (its cost is
    dominated by the number of points, ~2 µs each per pyramid level, so the point count and the
    levels are the speed knobs), with corners re-detected only when too few survive. Everything
    else — undistortion into bearings, the robust Kabsch fits — is batched over all frame pairs
    after the decode loop, into fixed-size arrays filled in place (no per-frame allocation).
    """
    model = rig.get("camera_model", "pinhole")
    if model not in SUPPORTED_CAMERAS:
        raise ValueError(f"camera model {model!r} is not supported by sync {SUPPORTED_CAMERAS}")
    dist = np.asarray(rig.get("distortion") or [0.0] * 5, dtype=np.float64)
    pts_ns: list[int] = []
    cap = 1024
    P0 = np.zeros((cap, MAX_CORNERS, 2), np.float32)  # tracked points per pair (padded), grown by doubling
    P1 = np.zeros((cap, MAX_CORNERS, 2), np.float32)
    counts = np.zeros(cap, np.int64)
    prev = None
    p_prev = None
    K = None
    halvings = 0
    size = (0, 0)
    lk = dict(winSize=LK_WIN, maxLevel=LK_LEVELS - 1, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERS, 0.03))
    i = -1
    for t, gray in iter_gray(video, fast=FAST_DECODE):
        if K is None:
            halvings = working_scale(gray.shape[1], gray.shape[0], max_side)
        for _ in range(halvings):
            gray = cv2.pyrDown(gray)
        if K is None:
            size = (gray.shape[1], gray.shape[0])
            K = camera_matrix(rig, 1.0 / (1 << halvings))  # pyrDown: output pixel x sits on input pixel 2x
            min_dist = max(3, int(min(size) / 20))
            lo = np.float32(2)
            hi = np.array(size, np.float32) - 2
        pts_ns.append(t)
        if prev is not None:
            i += 1
            if i == len(counts):
                P0, P1 = (np.concatenate([a, np.zeros_like(a)]) for a in (P0, P1))
                counts = np.r_[counts, np.zeros_like(counts)]
            if p_prev is None or len(p_prev) < REDETECT_BELOW:
                p_prev = cv2.goodFeaturesToTrack(prev, MAX_CORNERS, 0.01, min_dist, blockSize=3)
            if p_prev is not None and len(p_prev) >= MIN_TRACKS:
                p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p_prev, None, **lk)
                q = p1.reshape(-1, 2)
                keep = (st.ravel() == 1) & np.all((q >= lo) & (q < hi), axis=1)
                m = int(keep.sum())
                P0[i, :m] = p_prev.reshape(-1, 2)[keep]
                P1[i, :m] = q[keep]
                counts[i] = m
                p_prev = p1[keep]
            else:
                p_prev = None
        prev = gray
    if not pts_ns:
        raise VideoError(f"{video}: video has no decodable frames")
    if np.any(np.diff(pts_ns) <= 0):
        raise VideoError(f"{video}: decoded frames are not in increasing PTS order")
    n = i + 1
    counts = counts[:n]
    m = max(int(counts.max(initial=0)), 1)
    w = np.arange(m)[None, :] < counts[:, None]
    rotvec = np.zeros((n, 3))
    inliers = np.zeros(n, np.int64)
    fit_px = np.full(n, np.nan)
    b0 = np.zeros((n, m, 3))
    b1 = np.zeros((n, m, 3))
    mask = np.zeros((n, m), bool)
    if n and counts.sum():
        b0[w] = _bearings(P0[:n, :m][w], K, dist, model)
        b1[w] = _bearings(P1[:n, :m][w], K, dist, model)
        Q, mask = fit_rotations(b0, b1, w, tol=1.0 / K[0, 0])
        inliers = mask.sum(1)
        err = np.linalg.norm(b1 - b0 @ np.swapaxes(Q, 1, 2), axis=2)
        with np.errstate(invalid="ignore"):
            fit_px = np.sqrt(np.sum(np.where(mask, err**2, 0.0), 1) / inliers) * K[0, 0]
        # b_{i+1} = R_relᵀ·b_i with R_rel = R_iᵀ·R_{i+1}, so R_rel = Qᵀ.
        rotvec = Rotation.from_matrix(np.swapaxes(Q, 1, 2)).as_rotvec()
    valid = inliers >= MIN_TRACKS
    rotvec[~valid] = 0.0
    return VisualRotations(
        pts_ns=np.asarray(pts_ns, dtype=np.int64),
        rotvec=rotvec,
        valid=valid,
        inliers=inliers,
        fit_px=fit_px,
        width=size[0],
        height=size[1],
        b0=b0,
        b1=b1,
        mask=mask,
        noise_rad=1.0 / K[0, 0] if K is not None else 0.0,
    )


def rotations_given_translation(vis: VisualRotations, t_cam: np.ndarray, depth_m: float = 0.25,
                                noise_px: float = 0.3) -> np.ndarray:
    """Re-fit every pair's rotation knowing the camera's translation between the frames.

    Why: a head that walks or leans moves near objects across the image (parallax) and a
    rotation-only fit mistakes that for turning — at 0.5 m, 1 cm of sideways motion looks like
    20 mrad of pan. With the translation t (camera i+1 centre in camera-i axes, metres, from the
    head tracker once roughly synced) each track's unknown inverse depth ρ can be eliminated:
    linearised, b₁ − b₀ ≈ b₀ × θ − ρ·P t (P projects onto the tangent plane at b₀), so the
    component of the flow perpendicular to P t constrains θ whatever the depth. The component
    along P t is kept with a weight that fades as the parallax a typical depth would cause
    (|P t| / ``depth_m``) outgrows the tracking noise. Returns rotation vectors (N-1, 3).
    """
    if vis.b0 is None or not vis.mask.any():
        return vis.rotvec.copy()
    b0, b1 = vis.b0, vis.b1
    # Start from every track, not the rotation-only inliers: with strong parallax those may be the
    # wrong set (the near ones); the robust re-weighting below drops what is left over.
    m = np.any(b0 != 0, axis=2)
    d = b1 - b0
    u = t_cam[:, None, :] - np.sum(b0 * t_cam[:, None, :], axis=2, keepdims=True) * b0  # P t, tangent
    un = np.linalg.norm(u, axis=2, keepdims=True)
    uhat = np.where(un > 1e-12, u / np.maximum(un, 1e-12), 0.0)
    perp = np.cross(b0, uhat)  # tangent, ⊥ u
    sigma = noise_px * vis.noise_rad
    w_along = 1.0 / (1.0 + (un[..., 0] / depth_m / sigma) ** 2)
    no_t = un[..., 0] <= 1e-12
    # Without translation both tangent directions are informative: use any orthonormal pair.
    e1 = np.where(no_t[..., None], _tangent(b0), perp)
    e2 = np.where(no_t[..., None], np.cross(b0, _tangent(b0)), uhat)
    w2 = np.where(no_t, 1.0, w_along)
    rows, rhs, wts = [], [], []
    for e, w in ((e1, np.ones_like(w2)), (e2, w2)):
        rows.append(np.cross(e, b0))  # e·(b0 × θ) = θ·(e × b0)
        rhs.append(np.sum(e * d, axis=2))
        wts.append(w * m)
    A = np.concatenate(rows, axis=1)  # (N, 2M, 3)
    y = np.concatenate(rhs, axis=1)
    W = np.concatenate(wts, axis=1)
    theta = np.zeros((len(A), 3))
    for _ in range(3):  # robust re-weighting against tracks that move by themselves (hands)
        AtW = np.swapaxes(A * W[..., None], 1, 2)
        H = AtW @ A + 1e-12 * np.eye(3)
        theta = np.linalg.solve(H, (AtW @ y[..., None]))[..., 0]
        r = np.abs(y - np.einsum("nmk,nk->nm", A, theta))
        med = np.nan_to_num(np.nanmedian(np.where(W > 0.5, r, np.nan), axis=1), nan=0.0)
        W = W * (r < np.maximum(4.0 * med, sigma)[:, None])
    # The linearisation measured θ for b₁ ≈ (I − [θ]×) b₀, i.e. R_relᵀ: R_rel = exp(θ) to first order.
    theta[~vis.valid] = 0.0
    return theta


def _tangent(b: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to each bearing (bearings are near +z, so x × b works)."""
    t = np.cross(np.array([1.0, 0.0, 0.0]), b)
    return t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
