"""Camera rotation between consecutive decoded video frames, from the pixels alone (the video clock's evidence).

Why rotation: it is the one motion quantity that the video, a gyro and a head tracker all measure
directly and without scale — a pinhole camera turning by R moves every feature by the homography
K·Rᵀ·K⁻¹ whatever the depth, whereas translation needs depth. Per frame pair we track corners
with pyramidal Lucas–Kanade, undistort them into bearing vectors with the rig intrinsics and fit
the rotation that best maps one bundle onto the other (Kabsch/SVD) with outlier rejection, which
drops the moving hands and most of the translation parallax of near objects.

Frames are decoded to grey (the luma plane, no conversion) and halved until ≤ ``MAX_SIDE``
(intrinsics scaled with them): 64–128 px is plenty for rotation, and the per-frame cost is
what decides sync's speed (bench/sync.py, docs/sync.md). Frames that no other frame refers to
(most of H.264's B-frames) are not decoded at all, and in long videos no B-frame is: a pair then
spans two to four frame intervals, which the clock fit handles like any pair of frames with
their exact PTS.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from egoworld.video import VideoError

SUPPORTED_CAMERAS = ("pinhole", "opencv", "opencv_fisheye")
MIN_TRACKS = 12  # fewer inliers than this → no rotation for that frame pair
MAX_FIT_PX = 2.0  # inliers' RMS residual above this (working-size pixels) → no rotation: the tracks are garbage
# Speed knobs (bench/sync.py; per decoded frame at 128²: decoding ~0.25 ms, LK ~1 µs per point and
# pyramid level plus ~30 µs per level; measured on the 48-session sim set, docs/sync.md):
MAX_CORNERS = 100  # corners tracked per pair (70: −10 % sync time, median/p95 error 0.32/1.33 ms instead of 0.29/1.11)
REDETECT_BELOW = 60  # re-detect when fewer than this survive
MAX_SIDE = 128  # frames are halved (pyrDown) until their longer side is ≤ this
LK_WIN, LK_LEVELS, LK_ITERS = (9, 9), 3, 10  # 3 levels: ±16 px between decoded frames (1–4 frame intervals)
PREDICT = 1.0  # start each track at this fraction of the displacement the last pair's image velocity predicts
# Frames not decoded at all (FFmpeg's skip_frame), by video length: a long video has evidence to
# spare, a short one needs every pair (an 8 s clip's σ grew ~1.7× when skipping; a 16 s one
# skipping every B-frame missed a 25 ms clock jump that 30 s and 60 s ones still found):
SKIP_NONREF_MIN_S = 15.0  # from 15 s: frames no other frame refers to (x264's B-frames mostly): ~55 % decoded
SKIP_BIDIR_MIN_S = 30.0  # from 30 s: every B-frame (I- and P-frames only: ~34 % decoded, sync −25 %)
MIN_DECODED = {"BIDIR": 0.2, "NONREF": 0.3}  # ... unless that leaves fewer of the frames: then skip less
FAST_DECODE = False  # skip deblocking: −10 % decode, but the skipped filter's error then propagates to every
# later frame of the GOP (references are decoded unfiltered); median error 0.10 → 0.12 ms on the synthetic set
_PLANAR_8BIT = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray")


@dataclass
class VisualRotations:
    """Per measured pair of *decoded* frames (a, b): the rotation R_aᵀ·R_b in camera-a axes.

    Usually a pair is two consecutive frames; when the decoder skips non-reference frames
    (``skip_modes``) a pair spans the frames in between (``pair`` says which).
    """

    pts_ns: np.ndarray  # (N,) every frame's PTS on the camera clock (from the container, decoded or not)
    rotvec: np.ndarray  # (K, 3) axis-angle (rad); zeros where not valid
    valid: np.ndarray  # (K,) bool: enough inlier tracks for a trustworthy fit
    inliers: np.ndarray  # (K,) int: inlier tracks used
    fit_px: np.ndarray  # (K,) RMS reprojection residual of the inliers (pixels at the working size)
    width: int  # working size (after downscaling)
    height: int
    b0: np.ndarray | None = None  # (K, M, 3) bearings of the tracks in frame a (padded) ...
    b1: np.ndarray | None = None  # ... and in frame b
    mask: np.ndarray | None = None  # (K, M) inlier tracks of the rotation-only fit
    noise_rad: float = 0.0  # one tracking pixel in radians (at the working size)
    pair: np.ndarray | None = None  # (K, 2) indices into pts_ns of each pair's frames; None: consecutive frames

    def __post_init__(self) -> None:
        if self.pair is None:
            k = np.arange(max(len(self.pts_ns) - 1, 0))
            self.pair = np.c_[k, k + 1]

    @property
    def t0_s(self) -> np.ndarray:
        return self.pts_ns[self.pair[:, 0]] * 1e-9

    @property
    def t1_s(self) -> np.ndarray:
        return self.pts_ns[self.pair[:, 1]] * 1e-9

    def per_interval(self, x: np.ndarray) -> np.ndarray:
        """A per-pair value (K, ...) spread onto the N-1 consecutive-frame intervals it covers (NaN elsewhere)."""
        out = np.full((max(len(self.pts_ns) - 1, 0),) + np.shape(x)[1:], np.nan)
        if len(self.pair):
            span = self.pair[:, 1] - self.pair[:, 0]
            idx = np.repeat(self.pair[:, 0], span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
            out[idx] = np.repeat(np.asarray(x), span, axis=0)
        return out


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


def _bearing_planes(P: np.ndarray, w: np.ndarray, K: np.ndarray, dist: np.ndarray, model: str) -> np.ndarray:
    """Padded pixel tracks P (N, M, 2) → unit bearings as component planes (3, N, M), zero where not ``w``."""
    if model == "opencv_fisheye" or np.any(dist):
        out = np.zeros((3,) + w.shape)
        out[:, w] = _bearings(P[w], K, dist, model).T
        return out
    x = (P[..., 0].astype(np.float64) - K[0, 2]) / K[0, 0]
    y = (P[..., 1].astype(np.float64) - K[1, 2]) / K[1, 1]
    inv = w / np.sqrt(x * x + y * y + 1.0)
    return np.stack([x * inv, y * inv, inv])


def fit_rotations(b0: np.ndarray, b1: np.ndarray, w: np.ndarray, tol: float, iters: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Batched Kabsch: per pair n, the rotation Q_n with b1 ≈ Q_n·b0, re-fitted on inliers.

    ``b0``, ``b1``: (N, M, 3) bearings padded to M tracks, ``w``: (N, M) bool of real tracks.
    ``tol`` is the smallest inlier threshold in radians (about one pixel); the threshold adapts to
    3× the robust spread of each pair's residuals, so moving hands and near-object parallax drop
    out. Returns Q (N, 3, 3) and the inlier mask (N, M). Batched because a Python loop over
    frame pairs would cost more than the tracking itself.
    """
    Q, mask, _ = _fit_rotations(np.moveaxis(b0, 2, 0), np.moveaxis(b1, 2, 0), w, tol, iters)
    return Q, mask


def _fit_rotations(B0: np.ndarray, B1: np.ndarray, w: np.ndarray, tol: float, iters: int = 3):
    """``fit_rotations`` on component planes B0, B1 (3, N, M); also returns the last residuals (N, M).

    Planes, because every step is then a whole-array multiply-add (a batched (M, 3) matmul runs
    numpy's slow small-matrix loops).
    """
    B0, B1 = np.ascontiguousarray(B0), np.ascontiguousarray(B1)
    mask = w.copy()
    Q = np.broadcast_to(np.eye(3), (B0.shape[1], 3, 3)).copy()
    err = np.zeros(w.shape)
    rows = slice(None)  # the pairs whose inlier set changed (all at first): the others' fits stand
    for _ in range(iters):
        b0, b1, m = B0[:, rows], B1[:, rows], mask[rows]
        if not len(m):
            break
        H = np.einsum("inm,jnm->nij", b0 * m, b1)  # Σ b0·b1ᵀ over the inliers
        q = np.swapaxes(_rotation_polar(H), 1, 2)  # Kabsch: H = U·S·Vᵀ → Q = V·Uᵀ
        e = np.sqrt(sum((b1[k] - (q[:, k, 0, None] * b0[0] + q[:, k, 1, None] * b0[1] + q[:, k, 2, None] * b0[2])) ** 2
                        for k in range(3)))
        new = w[rows] & (e < np.maximum(tol, 4.0 * masked_median(e, m))[:, None])
        changed = np.any(new != m, axis=1)
        Q[rows], err[rows], mask[rows] = q, e, new
        rows = np.arange(len(w))[rows][changed]
    return Q, mask, err


def _rotation_polar(H: np.ndarray) -> np.ndarray:
    """The rotation nearest to each 3×3 matrix (N, 3, 3): U·Vᵀ of its SVD, the sign fixed to det +1."""
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(U @ Vt))
    U[:, :, 2] *= d[:, None]
    return U @ Vt


def masked_median(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row of ``x`` (N, M), the median of the entries where ``mask`` is true; 0 for an empty row.

    np.nanmedian along an axis goes through masked arrays and costs ~5× a plain sort.
    """
    v = np.where(mask, x, np.inf)
    v.sort(axis=1)
    n = mask.sum(1)
    rows = np.arange(len(v))
    lo, hi = np.maximum((n - 1) // 2, 0), np.maximum(n // 2, 0)
    with np.errstate(invalid="ignore"):
        med = 0.5 * (v[rows, np.minimum(lo, v.shape[1] - 1)] + v[rows, np.minimum(hi, v.shape[1] - 1)])
    return np.where(n > 0, med, 0.0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a × b along the last axis (np.cross, without its axis juggling: it is called on big batches)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


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


def iter_gray(path: str | Path, threads: int = 1, fast: bool = False, skip_frame: str | None = None,
              all_pts: list[int] | None = None):
    """Decode to 8-bit grey (the luma plane itself: no colour conversion, no copy) with PTS in ns.

    The yielded array is a strided view of the decoder's frame (row stride = the plane's line
    size); it stays valid as long as it is referenced. ``fast`` skips H.264's in-loop deblocking
    filter: ~10–15 % less decode time for pictures that differ from the exact decode by a little
    blockiness (anything that keeps pixels must not use it). ``skip_frame`` "NONREF" does not
    decode frames that no other frame refers to (x264's default B-frames), "BIDIR" no B-frame at
    all: those are never needed to decode the I- and P-frames, so they are skipped outright and
    the frames that are yielded are exact.
    ``all_pts``, when given, collects the PTS (ns) of *every* frame in the stream, decoded or not
    (from the container's packets, unsorted).
    """
    path = Path(path)
    c = _open_gray(path)
    try:
        s = c.streams.video[0]
        s.thread_count = threads
        if fast:
            s.codec_context.options = {"skip_loop_filter": "all"}
        if skip_frame:
            s.codec_context.skip_frame = skip_frame
        if s.codec_context.pix_fmt not in _PLANAR_8BIT + (None,):
            raise VideoError(f"{path}: pixel format {s.codec_context.pix_fmt!r} is not 8-bit planar YUV")
        tb = s.time_base  # frames and packets of a stream share its time base; Fraction math once, not per frame
        num, den = tb.numerator * 1_000_000_000, tb.denominator
        try:
            for packet in c.demux(s):
                if all_pts is not None and packet.pts is not None and packet.size:
                    all_pts.append(round(packet.pts * num / den))
                for frame in packet.decode():
                    plane = frame.planes[0]
                    luma = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
                    yield round(frame.pts * num / den), luma
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: video stream is corrupt ({e})") from e
    finally:
        c.close()


def duration_s(path: str | Path) -> float:
    """The video's duration from the container header (inf when it does not say)."""
    c = _open_gray(Path(path))
    try:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        return c.duration / 1e6 if c.duration is not None else float("inf")
    finally:
        c.close()


def skip_modes(duration: float) -> list[str | None]:
    """The ``skip_frame`` modes to try for a video this long (s), sparsest first; None: decode every frame."""
    modes: list[str | None] = [None]
    if duration >= SKIP_NONREF_MIN_S:
        modes.insert(0, "NONREF")
    if duration >= SKIP_BIDIR_MIN_S:
        modes.insert(0, "BIDIR")
    return modes


def working_scale(width: int, height: int, max_side: int) -> int:
    """How many times to halve the frame (cv2.pyrDown) so that its longer side is ≤ ``max_side``.

    Halving, not an arbitrary resize: pyrDown is a fixed 5-tap filter (≈ 10 µs a frame at 256²),
    where an area resize to a non-integer factor costs 5–10× more — as much as the tracking.
    """
    k = 0
    while max(width, height) > max_side * (1 << k):
        k += 1
    return k


@dataclass
class _Tracks:
    """What the decode-and-track loop leaves: per decoded frame its PTS, per pair the tracked points."""

    pts_ns: list[int]  # decoded frames
    packet_pts: list[int]  # every frame in the stream (unsorted)
    P0: np.ndarray  # (≥ pairs, MAX_CORNERS, 2) points in the first frame of each pair (padded)
    P1: np.ndarray  # ... where LK found them in the second
    ST: np.ndarray  # (≥ pairs, MAX_CORNERS) LK status
    pairs: int
    K: np.ndarray | None  # intrinsics at the working size
    size: tuple[int, int]  # working size


CHUNK = 128  # frames decoded ahead of tracking: decoding and LK in alternation evict each other's caches (~10 %)


def _decoded_chunks(video: str | Path, max_side: int, skip_frame: str | None, packet_pts: list[int]):
    """Decode to luma at the working size, ``CHUNK`` frames at a time: yields (halvings, PTS list, frames (n, h, w)).

    Two buffers take turns, so the last frame of a chunk stays valid while the next chunk is tracked.
    """
    bufs: list[np.ndarray] = []
    halvings, ts, n, k = 0, [], 0, 0
    for t, gray in iter_gray(video, fast=FAST_DECODE, skip_frame=skip_frame, all_pts=packet_pts):
        if not bufs:
            halvings = working_scale(gray.shape[1], gray.shape[0], max_side)
        for _ in range(halvings):
            gray = cv2.pyrDown(gray)
        if not bufs:
            bufs = [np.empty((CHUNK,) + gray.shape, np.uint8) for _ in range(2)]
        if gray.shape != bufs[k].shape[1:]:
            raise VideoError(f"{video}: the frame size changes within the video")
        bufs[k][n] = gray
        ts.append(t)
        n += 1
        if n == CHUNK:
            yield halvings, ts, bufs[k]
            ts, n, k = [], 0, 1 - k
    if n:
        yield halvings, ts, bufs[k][:n]


def _track(video: str | Path, rig: dict, max_side: int, skip_frame: str | None) -> _Tracks:
    """Decode to luma and track corners with LK from each decoded frame to the next.

    The per-frame loop is kept to the OpenCV calls and a few array copies: at a budget of
    ~0.3 ms a frame every numpy call (~2–5 µs) counts. Bounds checks and fits are batched later.
    """
    pts_ns: list[int] = []
    cap = 1024
    P0 = np.zeros((cap, MAX_CORNERS, 2), np.float32)  # grown by doubling
    P1 = np.zeros((cap, MAX_CORNERS, 2), np.float32)
    ST = np.zeros((cap, MAX_CORNERS), bool)
    prev = None
    p_prev = None
    vx = vy = 0.0  # mean image velocity of the last pair (px/ns)
    t_prev = 0
    K = None
    size = (0, 0)
    lk = dict(winSize=LK_WIN, maxLevel=LK_LEVELS - 1, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERS, 0.03),
              flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    i = -1
    packet_pts: list[int] = []
    for halvings, ts, frames in _decoded_chunks(video, max_side, skip_frame, packet_pts):
        if K is None:
            size = (frames.shape[2], frames.shape[1])
            K = camera_matrix(rig, 1.0 / (1 << halvings))  # pyrDown: output pixel x sits on input pixel 2x
            min_dist = max(3, int(min(size) / 20))
        pts_ns += ts
        for t, gray in zip(ts, frames):
            if prev is None:
                prev, t_prev = gray, t
                continue
            i += 1
            if i == len(ST):
                P0, P1, ST = (np.concatenate([a, np.zeros_like(a)]) for a in (P0, P1, ST))
            if p_prev is None or len(p_prev) < REDETECT_BELOW:
                p_prev = cv2.goodFeaturesToTrack(prev, MAX_CORNERS, 0.01, min_dist, blockSize=3)
            if p_prev is not None and len(p_prev) >= MIN_TRACKS:
                # Start each track where the last pair's mean image velocity puts it: a fast turn
                # over 2–4 frames (B-frames are skipped) then stays within the pyramid's reach.
                dt = PREDICT * (t - t_prev)
                guess = cv2.add(p_prev, (vx * dt, vy * dt, 0.0, 0.0))
                p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p_prev, guess, **lk)
                k = len(p_prev)
                P0[i, :k] = p_prev[:, 0]
                P1[i, :k] = p1[:, 0]
                ST[i, :k] = st[:, 0]
                m = cv2.countNonZero(st)
                if m >= MIN_TRACKS:
                    mx, my = cv2.mean(cv2.subtract(p1, p_prev), mask=st)[:2]
                    vx, vy = mx / (t - t_prev), my / (t - t_prev)
                else:
                    vx = vy = 0.0
                p_prev = p1 if m == k else p1[st[:, 0].view(bool)]
            else:
                p_prev = None
                vx = vy = 0.0
            prev = gray
            t_prev = t
    return _Tracks(pts_ns, packet_pts, P0, P1, ST, i + 1, K, size)


def visual_rotations(video: str | Path, rig: dict, max_side: int = MAX_SIDE) -> VisualRotations:
    """Track corners through the video and fit the rotation between every two consecutive decoded frames.

    Per decoded frame the work is one pyramidal LK call on ≤ ``MAX_CORNERS`` points (its cost is
    dominated by the number of points, ~1 µs each per pyramid level, so the point count and the
    levels are the speed knobs), with corners re-detected only when too few survive. Everything
    else — undistortion into bearings, the robust Kabsch fits — is batched over all pairs after
    the decode loop, into fixed-size arrays filled in place (no per-frame allocation).
    Non-reference frames are not decoded in videos of ``SKIP_NONREF_MIN_S`` or more, B-frames
    not at all from ``SKIP_BIDIR_MIN_S`` (``skip_modes``); where that would leave less than
    ``MIN_DECODED`` of the frames (a codec that marks far more frames so), fewer are skipped.
    """
    model = rig.get("camera_model", "pinhole")
    if model not in SUPPORTED_CAMERAS:
        raise ValueError(f"camera model {model!r} is not supported by sync {SUPPORTED_CAMERAS}")
    dist = np.asarray(rig.get("distortion") or [0.0] * 5, dtype=np.float64)
    for mode in skip_modes(duration_s(video)):
        tr = _track(video, rig, max_side, mode)
        if mode is None or len(tr.pts_ns) >= MIN_DECODED[mode] * len(tr.packet_pts):
            break
    pts_ns, packet_pts, P0, P1, ST, K, size = tr.pts_ns, tr.packet_pts, tr.P0, tr.P1, tr.ST, tr.K, tr.size
    if not pts_ns:
        raise VideoError(f"{video}: video has no decodable frames")
    if np.any(np.diff(pts_ns) <= 0):
        raise VideoError(f"{video}: decoded frames are not in increasing PTS order")
    # Every frame's PTS, decoded or not (the container's packets; a decoded frame's PTS is always among them).
    all_pts = np.union1d(np.asarray(packet_pts, dtype=np.int64), np.asarray(pts_ns, dtype=np.int64))
    decoded = np.searchsorted(all_pts, pts_ns)
    n = tr.pairs
    lo, hi = 2.0, np.array(size, np.float32) - 2  # tracks this close to the border are unreliable
    w = ST[:n] & np.all((P0[:n] >= lo) & (P0[:n] < hi) & (P1[:n] >= lo) & (P1[:n] < hi), axis=2)
    m = MAX_CORNERS
    rotvec = np.zeros((n, 3))
    inliers = np.zeros(n, np.int64)
    fit_px = np.full(n, np.nan)
    # Bearings as component planes (3, n, m); VisualRotations gets (n, m, 3) views of them.
    B0 = np.zeros((3, n, m))
    B1 = np.zeros((3, n, m))
    mask = np.zeros((n, m), bool)
    if n and w.any():
        B0 = _bearing_planes(P0[:n, :m], w, K, dist, model)
        B1 = _bearing_planes(P1[:n, :m], w, K, dist, model)
        Q, mask, err = _fit_rotations(B0, B1, w, tol=1.0 / K[0, 0])
        inliers = mask.sum(1)
        with np.errstate(invalid="ignore"):
            fit_px = np.sqrt(np.sum(np.where(mask, err**2, 0.0), 1) / inliers) * K[0, 0]
        # b_{i+1} = R_relᵀ·b_i with R_rel = R_iᵀ·R_{i+1}, so R_rel = Qᵀ.
        rotvec = Rotation.from_matrix(np.swapaxes(Q, 1, 2)).as_rotvec()
    with np.errstate(invalid="ignore"):
        valid = (inliers >= MIN_TRACKS) & ~(fit_px > MAX_FIT_PX)
    rotvec[~valid] = 0.0
    return VisualRotations(
        pts_ns=all_pts,
        rotvec=rotvec,
        valid=valid,
        inliers=inliers,
        fit_px=fit_px,
        width=size[0],
        height=size[1],
        b0=np.moveaxis(B0, 0, 2),
        b1=np.moveaxis(B1, 0, 2),
        mask=mask,
        noise_rad=1.0 / K[0, 0] if K is not None else 0.0,
        pair=np.c_[decoded[:-1], decoded[1:]],
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
    # Component planes (3, N, M): every step below is then a few whole-array multiply-adds.
    b0 = np.ascontiguousarray(np.moveaxis(vis.b0, 2, 0))
    d = np.moveaxis(vis.b1, 2, 0) - b0
    # Start from every track, not the rotation-only inliers: with strong parallax those may be the
    # wrong set (the near ones); the robust re-weighting below drops what is left over.
    m = b0[2] != 0  # real tracks (bearings point forward; padding is zero)
    t = np.asarray(t_cam, dtype=np.float64).T[:, :, None]  # (3, N, 1)
    u = t - (b0[0] * t[0] + b0[1] * t[1] + b0[2] * t[2]) * b0  # P t, tangent
    un = np.sqrt(u[0] ** 2 + u[1] ** 2 + u[2] ** 2)
    sigma = noise_px * vis.noise_rad
    no_t = un <= 1e-12
    # An orthonormal tangent pair per track: f along P t (any tangent direction where there is no
    # translation), g = b₀ × f. The flow along g is blind to depth; along f it carries the parallax
    # and is weighted down as the parallax a typical depth would cause (|P t| / depth_m) outgrows the noise.
    f = u / np.maximum(un, 1e-12)
    if no_t.any():
        f[:, no_t] = _tangent(b0[:, no_t].T).T
    g = np.stack([b0[1] * f[2] - b0[2] * f[1], b0[2] * f[0] - b0[0] * f[2], b0[0] * f[1] - b0[1] * f[0]])
    wf = np.where(no_t, 1.0, 1.0 / (1.0 + (un / depth_m / sigma) ** 2))
    # e·(b₀ × θ) = θ·(e × b₀), and in the orthonormal frame (f, g, b₀): g × b₀ = f, f × b₀ = −g.
    # So per track two rows: the flow along g is f·θ, the flow along f is −g·θ.
    yg = g[0] * d[0] + g[1] * d[1] + g[2] * d[2]
    yf = f[0] * d[0] + f[1] * d[1] + f[2] * d[2]
    # Normal equations: H = Σ w·a·aᵀ, rhs = Σ w·a·y over both rows of every track — the products
    # are fixed, only the weights change between the robust passes: (N, 9, 2M) · (N, 2M) each pass.
    M = yg.shape[1]
    prod = np.empty((9, len(yg), 2 * M))
    for k, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
        np.multiply(f[i], f[j], out=prod[k, :, :M])
        np.multiply(g[i], g[j], out=prod[k, :, M:])
    np.multiply(f, yg, out=prod[6:, :, :M])
    np.multiply(g, -yf, out=prod[6:, :, M:])
    W = np.concatenate([m.astype(float), wf * m], axis=1)
    theta = np.zeros((len(yg), 3))
    sym = np.array([0, 1, 2, 1, 3, 4, 2, 4, 5])
    for it in range(3):  # robust re-weighting against tracks that move by themselves (hands)
        s = np.einsum("knr,nr->nk", prod, W)
        H = s[:, sym].reshape(-1, 3, 3) + 1e-12 * np.eye(3)
        theta = np.linalg.solve(H, s[:, 6:, None])[..., 0]
        if it == 2:
            break
        th = theta.T[:, :, None]
        r = np.concatenate([np.abs(yg - (f[0] * th[0] + f[1] * th[1] + f[2] * th[2])),
                            np.abs(yf + (g[0] * th[0] + g[1] * th[1] + g[2] * th[2]))], axis=1)
        W = W * (r < np.maximum(4.0 * masked_median(r, W > 0.5), sigma)[:, None])
    # The linearisation measured θ for b₁ ≈ (I − [θ]×) b₀, i.e. R_relᵀ: R_rel = exp(θ) to first order.
    theta[~vis.valid] = 0.0
    return theta


def _tangent(b: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to each bearing (bearings are near +z, so x × b works)."""
    t = _cross(np.broadcast_to(np.array([1.0, 0.0, 0.0]), b.shape), b)
    return t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
