"""Clock offset and drift of one motion clock against the video clock, with a verdict.

Model (docs/session-format.md): ``t_stream = (1 + drift)·t_video + offset``. The evidence is the
camera rotation between consecutive video frames, seen by the pixels (visual.py) and by every
rotation-bearing stream on the clock (evidence.py). Steps, in the line of Gyroflow / Kalibr:

1. **coarse**: normalised cross-correlation of the two rotation-rate signals over ±``max_lag``
   (10 ms steps as FFT correlations of the resampled rates, then exactly on the frame pairs at
   1 ms around the peak, parabolic sub-step) — finds the offset whatever the drift, and its
   sharpness/uniqueness says whether there is anything to sync at all; a clock drifting so fast
   that the whole-session correlation smears is correlated in 5 s pieces first, whose peaks
   give the drift to correlate along;
2. **windows**: in consecutive windows of a few seconds, the lag minimising the robust rate
   mismatch (4 ms then 1 ms grid + parabola = sub-sample; all windows in one batch), each with
   its own uncertainty from the cost's curvature;
3. **line**: a robust (Huber IRLS) weighted line through the window lags → offset and drift; a
   step in the window lags that a line cannot explain is a clock jump;
4. **polish**: Gauss–Newton on (offset, drift [, gyro bias]) over every frame pair, Huber
   weights — the window fit's precision is limited by its grid; this uses all frames at once.

Every threshold that turns numbers into a verdict lives in ``Limits``; a clock whose evidence is
too weak gets ``failed`` with the reason, never a silently wrong answer. A ``Prior`` (an earlier
pass's fit of the same clock, or a chain through other clocks) skips the ±``max_lag`` search
and starts the windows from its line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sp_fft

from egoworld.sync.evidence import RotationEvidence
from egoworld.sync.visual import VisualRotations, masked_median

OK, SUSPECT, FAILED = "ok", "suspect", "failed"
POLISH_GATE_S = 2e-3  # the all-frame polish may move the window fit by 4σ or this much
CONFIDENCE_SCALE_MS = 2.0  # confidence = peak NCC · exp(−σ / this)
ROBUST_C = 2.5  # Cauchy loss scale, in robust standard deviations of the per-pair mismatch
PRIOR_SEARCH_S = 0.015  # window search half-width around a prior line (pass 2, links)
SEGMENT_S = 5.0  # pieces in which a fast-drifting clock is correlated when the whole session smears
COARSE_STEP_S = 0.01  # lag grid of the ±max_lag correlation search
_RANK = {OK: 0, SUSPECT: 1, FAILED: 2}


@dataclass(frozen=True)
class Limits:
    """Search ranges and the thresholds behind every verdict (one place for all of them)."""

    max_lag_s: float = 1.0  # coarse search range for the offset (issue: offsets within ±500 ms)
    max_drift_ppm: float = 1500.0  # window search covers this much drift
    heavy_drift_ppm: float = 25000.0  # if that finds too few windows, search again this wide (a broken clock)
    min_duration_s: float = 2.0  # shorter videos: failed (too short)
    min_valid_pairs: float = 0.5  # fraction of frame pairs with a rotation fit, else failed (no texture)
    min_motion_rad_s: float = 0.05  # RMS camera rotation rate below this: failed (no motion)
    min_ncc: float = 0.8  # coarse peak correlation below this: failed (video and stream disagree)
    ok_ncc: float = 0.9  # below this: suspect
    max_peak_ratio: float = 0.9  # second peak this close to the first: failed (ambiguous)
    min_coverage: float = 0.5  # fraction of the video the stream covers after alignment
    window_s: tuple[float, float] = (2.0, 6.0)  # window length range (about duration / 8)
    min_windows: int = 2  # fewer windows with a clear lag: failed (too little motion to trust)
    min_windows_for_drift: int = 3  # fewer usable windows: drift fixed at 0, suspect
    min_window_ncc: float = 0.5  # a window whose picture and stream correlate less than this has no usable lag
    drift_prior_ppm: float = 600.0  # 1σ of a Gaussian prior on drift (real oscillators: ±1000 ppm)
    ok_sigma_ms: float = 1.25  # timing uncertainty (1σ) above this: suspect. 4σ = 5 ms, the p95 target:
    # σ can be optimistic by 2–4× on cluttered scenes (on the 48-session sim set, no clock with σ ≤ 1.25
    # ms had a p95 error above 5 ms; the first one above was at σ = 1.26)
    max_sigma_frac: float = 0.25  # ... above this fraction of a frame: failed
    min_rate_ratio: float = 0.5  # video turns slower than this × the stream: failed if the rig says the camera
    # stabilised, suspect otherwise (a wrong field of view scales the ratio too: a 90° guess for a 120° lens → 0.58)
    stabilised_confidence: float = 0.5  # confidence factor when in-camera stabilisation is on
    ok_residual_ms: float = 5.0  # window lags scatter more than this about the fit: suspect
    ok_drift_ppm: float = 2000.0  # more drift than any real oscillator: suspect
    jump_min_ms: float = 3.0  # smallest step reported as a clock jump
    jump_sigmas: float = 6.0  # ... and it must be this many σ


@dataclass(frozen=True)
class Prior:
    """What an earlier fit (or a chain of fits) already says about a clock, to narrow the searches.

    Times are relative to the session's reference time, as inside ``estimate_clock``.
    """

    coarse_s: float  # the coarse offset: only the 1 ms correlation stage runs around it ...
    peak_ratio: float  # (second correlation peak / first, as the earlier full search found it)
    offset_s: float  # the line the window search starts from: lag(t) = offset_s + drift·t ...
    drift: float
    search_s: float = PRIOR_SEARCH_S  # ... searched ± this wide (a window whose lag lies beyond is dropped)
    coarse_drift: float = 0.0  # ... along this drift (what the earlier coarse search ran along)


@dataclass
class Segment:
    """A stretch of video time (from ``start_s`` on) with one linear clock model."""

    start_s: float  # video-clock seconds (absolute); -inf for the first segment
    offset_s: float
    drift: float  # dimensionless (ppm · 1e-6)


@dataclass
class ClockFit:
    """The answer for one motion clock: the mapping video → stream time, how sure, and why."""

    clock: str
    streams: list[str]
    evidence: list[str]
    segments: list[Segment]
    verdict: str
    reason: str
    confidence: float = 0.0
    residual_ms: float = float("nan")  # RMS of the window lags about the fitted model
    residual_rad_s: float = float("nan")  # RMS rate mismatch video vs stream after sync
    sigma_ms: float = float("nan")  # 1σ timing uncertainty, worst over the video
    peak_ncc: float = float("nan")
    peak_ratio: float = float("nan")
    coarse_offset_ms: float = float("nan")
    windows: list[dict] = field(default_factory=list)
    jump: dict | None = None
    bias_rad_s: list[float] | None = None
    frame_residual: np.ndarray | None = None  # (K,) rad/s per measured pair (VisualRotations.pair), NaN where unknown
    rate_ratio: float = float("nan")  # RMS video rotation rate / RMS stream rate over the same pairs, after sync
    coarse_drift: float = 0.0  # the drift the coarse correlation ran along (0 unless the clock drifts wildly)

    @property
    def offset_ms(self) -> float:
        return self.segments[0].offset_s * 1e3 if self.segments else float("nan")

    @property
    def drift_ppm(self) -> float:
        return self.segments[0].drift * 1e6 if self.segments else float("nan")

    def to_stream_s(self, t_video_s: np.ndarray) -> np.ndarray:
        """Stream-clock time of video-clock times (seconds, same origin)."""
        t = np.asarray(t_video_s, dtype=np.float64)
        out = np.empty_like(t)
        starts = np.array([s.start_s for s in self.segments])
        idx = np.searchsorted(starts, t, side="right") - 1
        idx = np.clip(idx, 0, len(self.segments) - 1)
        for i, seg in enumerate(self.segments):
            m = idx == i
            out[m] = stream_time(t[m], seg.offset_s, seg.drift)
        return out

    def to_json(self) -> dict:
        return {
            "streams": self.streams,
            "evidence": self.evidence,
            "offset_ms": _r(self.offset_ms, 4),
            "drift_ppm": _r(self.drift_ppm, 2),
            "residual_ms": _r(self.residual_ms, 4),
            "residual_rad_s": _r(self.residual_rad_s, 5),
            "sigma_ms": _r(self.sigma_ms, 4),
            "confidence": _r(self.confidence, 4),
            "verdict": self.verdict,
            "reason": self.reason,
            "coarse_offset_ms": _r(self.coarse_offset_ms, 2),
            "peak_ncc": _r(self.peak_ncc, 4),
            "peak_ratio": _r(self.peak_ratio, 4),
            "segments": [
                {"start_s": None if not np.isfinite(s.start_s) else round(s.start_s, 6),
                 "offset_ms": _r(s.offset_s * 1e3, 4), "drift_ppm": _r(s.drift * 1e6, 2)}
                for s in self.segments
            ],
            "jump": self.jump,
            "gyro_bias_rad_s": self.bias_rad_s,
            "rate_ratio": _r(self.rate_ratio, 4),
            "windows": self.windows,
        }


def _r(x: float, nd: int) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def stream_time(t_video, offset, drift, t_at=0.0):
    """The clock model, the one place it is written: ``t_stream = (1 + drift)·t_video + offset``.

    With ``t_at`` the offset is the lag ``t_stream − t_video`` at ``t_video = t_at`` (the windows
    and the polish work around a window centre, where offset and drift are uncorrelated).
    """
    return t_video + offset + drift * (t_video - t_at)


def video_time(t_stream, offset, drift):
    """The inverse of ``stream_time``: the video time of stream times."""
    return (t_stream - offset) / (1 + drift)


def inverse_model(offset: float, drift: float) -> tuple[float, float]:
    """(offset, drift) of the inverse mapping, video time as a ``stream_time`` of stream time."""
    return -offset / (1 + drift), 1 / (1 + drift) - 1


def compose_models(outer: tuple[float, float], inner: tuple[float, float]) -> tuple[float, float]:
    """(offset, drift) of ``stream_time(stream_time(t, *inner), *outer)`` — a clock seen through another."""
    (o2, d2), (o1, d1) = outer, inner
    return (1 + d2) * o1 + o2, (1 + d2) * (1 + d1) - 1


def model_offset(lag_at: float, drift: float, t_at: float) -> float:
    """The ``offset`` of ``stream_time`` (at 0) whose lag is ``lag_at`` at ``t_at``; also the offset on
    absolute times of a fit made on times relative to ``t_at`` (both are ``lag − drift·t_at``)."""
    return lag_at - drift * t_at


def worst(*verdicts: str) -> str:
    return max(verdicts, key=_RANK.__getitem__) if verdicts else OK


# ---------------------------------------------------------------- the comparison itself


@dataclass
class _Pairs:
    """Visual frame-pair rotations in the solver's terms: relative seconds, rates, weights."""

    t0: np.ndarray  # (M,) video seconds relative to t_ref
    t1: np.ndarray
    rate: np.ndarray  # (M, 3) rad/s
    idx: np.ndarray  # (M,) index into the K measured pairs (VisualRotations.pair)


def _pairs(vis: VisualRotations, t_ref_ns: int) -> _Pairs:
    t0 = (vis.pts_ns[vis.pair[:, 0]] - t_ref_ns) * 1e-9
    t1 = (vis.pts_ns[vis.pair[:, 1]] - t_ref_ns) * 1e-9
    idx = np.flatnonzero(vis.valid)
    return _Pairs(t0[idx], t1[idx], vis.rotvec[idx] / (t1 - t0)[idx, None], idx)


def _residuals(p: _Pairs, ev: list[RotationEvidence], offset: np.ndarray, drift: float, tc: float = 0.0):
    """Rate mismatch (L, M, 3) for L candidate offsets; NaN where a stream does not cover the pair.

    Stream time of video time t: s = t + offset + drift·(t − tc). Several streams on one clock
    stack along M (each compared with the same video pairs).
    """
    offset = np.atleast_1d(offset)[:, None]
    out = []
    dt = (p.t1 - p.t0)[None, :, None]
    for e in ev:
        s0 = stream_time(p.t0[None, :], offset, drift, tc)
        s1 = stream_time(p.t1[None, :], offset, drift, tc)
        pred = e.increments(s0, s1) / dt
        r = p.rate[None] - pred
        lo, hi = e.span
        r[(s0 < lo) | (s1 > hi)] = np.nan
        if e.has_bias:  # a constant gyro bias: remove the mean mismatch per candidate
            r = r - np.nanmean(r, axis=1, keepdims=True)
        out.append(r)
    return np.concatenate(out, axis=1)


def _ncc(p: _Pairs, ev: list[RotationEvidence], lags: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of video and stream rates at each lag (weighted means removed).

    A pair counts fully once the stream covers it by one pair duration, and its weight ramps to 0
    as it slides off the stream's ends. With a hard in/out mask the correlation jumps wherever a
    pair crosses an end, and when the motion runs up to the end of the video (the real HERO5 pan)
    such a jump can be the highest point: the peak then sits on the crossing, not on the motion,
    and a search lands on it or not depending on where it starts (one IMU-sample-sized error in
    half the known shifts). Continuous in the lag, the peak moves exactly with a shift.
    """
    scores = np.zeros(len(lags))
    total = np.zeros(len(lags))
    kt, _, i1 = _knots(p.t0, p.t1)  # consecutive pairs share a frame: each frame time once
    ramp = float(np.median(p.t1 - p.t0))
    for e in ev:
        s0 = p.t0[None, :] + lags[:, None]
        s1 = p.t1[None, :] + lags[:, None]
        c = e.at(kt[None, :] + lags[:, None])
        pred = np.take(np.diff(c, axis=1), i1 - 1, axis=1) / (p.t1 - p.t0)[None, :, None]
        lo, hi = e.span
        w = (np.clip((s0 - lo) / ramp, 0.0, 1.0) * np.clip((hi - s1) / ramp, 0.0, 1.0))[..., None]
        n = np.maximum(w.sum(1), 1e-12)[:, None]
        v = p.rate[None] - (w * p.rate[None]).sum(1, keepdims=True) / n
        g = pred - (w * pred).sum(1, keepdims=True) / n
        num = np.sum(w * v * g, axis=(1, 2))
        den = np.sqrt(np.sum(w * v * v, axis=(1, 2)) * np.sum(w * g * g, axis=(1, 2)))
        cover = w[..., 0].mean(1)
        scores += np.where(den > 0, num / np.maximum(den, 1e-12), 0.0) * cover
        total += cover
    return scores / np.maximum(total, 1e-12)


def _grid_ncc(p: _Pairs, ev: list[RotationEvidence], lags: np.ndarray) -> np.ndarray:
    """``_ncc`` on a uniform lag grid, as correlations of the rates resampled on that grid (FFT).

    The video rate is held over each pair; the stream's is its mean over one typical pair
    duration. Every sum the normalised correlation needs (counts, means, variances, the cross
    term, all restricted to where both signals exist) is then one correlation of two series,
    so the whole ±``max_lag_s`` search costs a few FFTs instead of lags × pairs interpolations.
    The 10 ms grid only has to land within the main lobe and show any rival peak; the peak
    itself is measured exactly on the pairs afterwards.
    """
    h = float(lags[1] - lags[0])
    u = np.arange(p.t0[0], p.t1[-1], h)
    k = np.clip(np.searchsorted(p.t0, u, side="right") - 1, 0, len(p.t0) - 1)
    mv = (u >= p.t0[k]) & (u < p.t1[k])
    v = np.where(mv[:, None], np.take(p.rate, k, axis=0), 0.0)
    dur = float(np.median(p.t1 - p.t0))
    s = u[0] + lags[0] + h * np.arange(len(u) + len(lags) - 1)  # stream times u + every lag
    # corr(a, b)_i = Σ_j a_j·b_(j+i) for every lag i, as products of spectra: every series is
    # transformed once (each axis, squares summed over the axes) and all the correlations go
    # back through one batched inverse transform.
    nfft = sp_fft.next_fast_len(len(s), real=True)
    fv = mv.astype(float)
    V = sp_fft.rfft(np.stack([fv, v[:, 0], v[:, 1], v[:, 2], np.sum(v * v, axis=1)]), nfft, axis=1).conj()
    scores = np.zeros(len(lags))
    total = np.zeros(len(lags))
    for e in ev:
        lo, hi = e.span
        mg = ((s - dur / 2 >= lo) & (s + dur / 2 <= hi)).astype(float)
        g = (e.at(s + dur / 2) - e.at(s - dur / 2)) / dur * mg[:, None]
        G = sp_fft.rfft(np.stack([mg, g[:, 0], g[:, 1], g[:, 2], np.sum(g * g, axis=1)]), nfft, axis=1)
        prods = np.stack([V[0] * G[0],  # coverage count
                          V[1] * G[0], V[2] * G[0], V[3] * G[0],  # Σ video rate (per axis) where the stream is
                          V[0] * G[1], V[0] * G[2], V[0] * G[3],  # Σ stream rate where the video is
                          V[1] * G[1] + V[2] * G[2] + V[3] * G[3],  # cross term, summed over the axes
                          V[4] * G[0], V[0] * G[4]])  # Σ |video rate|², Σ |stream rate|²
        c = sp_fft.irfft(prods, nfft, axis=1)[:, : len(lags)]
        n = np.maximum(c[0], 1.0)
        sv, sg = c[1:4], c[4:7]
        num = c[7] - np.sum(sv * sg, axis=0) / n
        den_v = c[8] - np.sum(sv**2, axis=0) / n
        den_g = c[9] - np.sum(sg**2, axis=0) / n
        den = np.sqrt(np.maximum(den_v, 0.0) * np.maximum(den_g, 0.0))
        cover = c[0] / max(fv.sum(), 1.0)
        scores += np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0) * cover
        total += cover
    return scores / np.maximum(total, 1e-12)


def _parabola(y: np.ndarray, k: int) -> float:
    """Sub-sample position of an extremum at index k from its two neighbours."""
    if k <= 0 or k >= len(y) - 1:
        return 0.0
    a, b, c = float(y[k - 1]), float(y[k]), float(y[k + 1])
    den = a - 2 * b + c
    return 0.0 if den == 0 else min(max(0.5 * (a - c) / den, -0.5), 0.5)


def coarse_offset(p: _Pairs, ev: list[RotationEvidence], center: float, lim: Limits,
                  near: tuple[float, float, float] | None = None) -> tuple[float, float, float, float]:
    """Offset (s) at the cross-correlation peak, the peak NCC, the second peak / first, and the drift.

    The drift is 0 unless the clock drifts so fast that no single lag fits the whole session
    (the correlation smears below ``min_ncc``): then the peaks of pieces of the session give
    the drift, and the correlation is taken along it (s = (1 + drift)·t + offset).
    ``near`` = (offset, second-peak ratio, drift) that an earlier search on the same clock
    found (to within a few ms): then only the 1 ms stage runs, around it, and that ratio is kept.
    """
    drift = 0.0
    if near is None:
        lags = center + np.arange(-lim.max_lag_s, lim.max_lag_s + 1e-9, COARSE_STEP_S)
        ncc = _grid_ncc(p, ev, lags)
        if ncc.max() < lim.min_ncc:
            d = _segment_drift(p, ev, lags, lim)
            if d is not None:
                ncc_d = _grid_ncc(_scaled(p, d), ev, lags)
                if ncc_d.max() > ncc.max():
                    ncc, drift = ncc_d, d
        k = int(np.argmax(ncc))
        away = np.abs(lags - lags[k]) > 0.15  # outside the main lobe
        local_max = np.r_[False, (ncc[1:-1] >= ncc[:-2]) & (ncc[1:-1] >= ncc[2:]), False]
        second = float(np.max(ncc[away & local_max], initial=0.0))
        mid, half = lags[k] + COARSE_STEP_S * _parabola(ncc, k), 0.005
    else:
        mid, half, drift = near[0], 0.003, near[2]
    fine = mid + np.arange(-half, half + 1e-9, 0.001)
    nf = _ncc(_scaled(p, drift) if drift else p, ev, fine)
    j = int(np.argmax(nf))
    peak = float(nf[j])
    ratio = near[1] if near is not None else (second / peak if peak > 0 else 1.0)
    return float(fine[j] + 0.001 * _parabola(nf, j)), peak, ratio, drift


def ncc_peak(p: _Pairs, ev: list[RotationEvidence], around: float, half: float = 0.002) -> float:
    """The lag (s) of the correlation peak near ``around``, located continuously (bounded Brent).

    The 1 ms grid + parabola of ``coarse_offset`` is not shift-equivariant to a fraction of a ms
    (a peak is not a parabola); a continuous search is, which the known-shift test asks for.
    """
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda lag: -float(_ncc(p, ev, np.array([lag]))[0]), bounds=(around - half, around + half),
                          method="bounded", options={"xatol": 1e-6})
    return float(res.x)


def _scaled(p: _Pairs, drift: float) -> _Pairs:
    """The pairs with their times stretched by (1 + drift): then s = t' + lag is the drifting clock."""
    return _Pairs(stream_time(p.t0, 0.0, drift), stream_time(p.t1, 0.0, drift), p.rate, p.idx)


def _segment_drift(p: _Pairs, ev: list[RotationEvidence], lags: np.ndarray, lim: Limits) -> float | None:
    """Drift from where the correlation peaks in pieces of the session (None if the pieces do not agree).

    A broken clock (say 20 000 ppm) moves the lag by 400 ms over 20 s, which smears a
    whole-session correlation below any threshold; over a few seconds it moves little, so each
    piece still peaks clearly, and the peaks line up along the drift.
    """
    edges = np.arange(p.t0[0], p.t1[-1] - 0.5 * SEGMENT_S, SEGMENT_S)
    tc, lag = [], []
    for a in edges:
        m = (p.t0 >= a) & (p.t1 <= a + SEGMENT_S)
        if m.sum() < 20:
            continue
        sub = _Pairs(p.t0[m], p.t1[m], p.rate[m], p.idx[m])
        c = _grid_ncc(sub, ev, lags)
        k = int(np.argmax(c))
        if c[k] >= lim.min_ncc:
            tc.append(float(np.mean(sub.t0)))
            lag.append(lags[k] + COARSE_STEP_S * _parabola(c, k))
    if len(tc) < 2:
        return None
    i, j = np.triu_indices(len(tc), 1)
    d = float(np.median((np.take(lag, j) - np.take(lag, i)) / (np.take(tc, j) - np.take(tc, i))))  # Theil–Sen
    return d if abs(d) <= lim.heavy_drift_ppm * 1e-6 else None


def _window_costs(p: _Pairs, ev: list[RotationEvidence], sizes: np.ndarray, centers: np.ndarray, tcs: np.ndarray,
                  drift: float, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean robust mismatch (L, W) of every window at the lags ``centers[w] + grid``, and pairs used (L, W).

    ``p`` holds the windows' pairs back to back (``sizes[w]`` each, in order). All windows and
    candidate lags are evaluated in one batch: per window the work is small, and a Python loop
    over windows cost more than the arithmetic. Cauchy loss per frame pair (its scale from the
    window's median mismatch at the middle candidate): a pair whose rotation is wrong (a hand
    sweeping through the view, a burst of parallax) would otherwise own the squared cost and
    pull the lag. ``inf`` where the streams cover < 90 % of a window's pairs at every candidate.
    """
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    wi = np.repeat(np.arange(len(sizes)), sizes)
    base0 = stream_time(p.t0, centers[wi], drift, tcs[wi])
    base1 = stream_time(p.t1, centers[wi], drift, tcs[wi])
    s0, s1 = base0[None] + grid[:, None], base1[None] + grid[:, None]
    # Consecutive pairs share a frame: evaluate the streams once per distinct frame time (knot).
    kt, kw, i1 = _knots(p.t0, p.t1, wi)
    sk = stream_time(kt, centers[kw], drift, tcs[kw])[None] + grid[:, None]
    dt = (p.t1 - p.t0)[None, :, None]
    e2s, goods = [], []
    for e in ev:
        lo, hi = e.span
        # Only pairs the stream covers at *every* candidate lag: a mean over a pair set that changes
        # with the lag (at the stream's ends) has steps, and a step can pose as a sharp minimum.
        good = np.all((s0 >= lo) & (s1 <= hi), axis=0)
        r = np.take(np.diff(e.at(sk), axis=1), i1 - 1, axis=1)  # stream increment over each pair
        r /= dt
        np.subtract(p.rate[None], r, out=r)
        r[:, ~good] = 0.0
        if e.has_bias:  # a constant gyro bias: remove the mean mismatch per candidate and window
            n = np.add.reduceat(good, starts)
            mean = np.add.reduceat(r, starts, axis=1) / np.maximum(n, 1)[None, :, None]
            r = np.where(good[None, :, None], r - np.repeat(mean, sizes, axis=1), 0.0)
        e2s.append(np.einsum("lmk,lmk->lm", r, r))  # (a sum over an axis of 3 is slow in np.sum)
        goods.append(np.broadcast_to(good, s0.shape))
    e2, good = np.stack(e2s, 1), np.stack(goods, 1)  # (L, S, M)
    # Per window, the median mismatch over its pairs (all streams) at the middle candidate.
    mid = len(grid) // 2
    pos = np.arange(len(wi)) - starts[wi]
    pad = np.full((len(ev), len(sizes), int(sizes.max())), np.inf)
    have = np.zeros(pad.shape, bool)
    pad[:, wi, pos] = e2[mid]
    have[:, wi, pos] = good[mid]
    W = len(sizes)
    med = masked_median(np.sqrt(np.swapaxes(pad, 0, 1).reshape(W, -1)), np.swapaxes(have, 0, 1).reshape(W, -1))
    c2 = np.where(have.any(axis=(0, 2)), (ROBUST_C * 1.4826 * med) ** 2, 1.0)
    c2p = np.repeat(c2, sizes)
    rho = c2p * np.log1p(e2 / np.maximum(c2p, 1e-30))  # e2 is 0 where not covered
    used = np.add.reduceat(good.sum(1), starts, axis=1)
    cost = np.add.reduceat(rho.sum(1), starts, axis=1) / np.maximum(used, 1)
    return np.where(used > 0.9 * len(ev) * sizes, cost, np.inf), used


def _knots(t0: np.ndarray, t1: np.ndarray, group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct frame times of pairs (t0, t1) that mostly chain (t1 of one = t0 of the next).

    Returns knot times, each knot's group and i1: pair k runs from knot i1[k] − 1 to knot i1[k],
    so a quantity at the knots gives every pair's increment as ``np.diff(x)[i1 - 1]``. A pair
    starts a new knot unless it continues the previous pair (same ``group``, same time).
    """
    g = np.zeros(len(t0), np.intp) if group is None else group
    new = np.ones(len(t0), bool)
    new[1:] = (t0[1:] != t1[:-1]) | (g[1:] != g[:-1])
    i1 = np.cumsum(new.astype(np.intp) + 1) - 1
    kt = np.empty(i1[-1] + 1 if len(i1) else 0)
    kg = np.empty(len(kt), np.intp)
    kt[i1], kg[i1] = t1, g
    kt[i1[new] - 1], kg[i1[new] - 1] = t0[new], g[new]
    return kt, kg, i1


def window_lags(p: _Pairs, ev: list[RotationEvidence], offset: float, drift: float, search_s: float,
                lim: Limits) -> list[dict]:
    """Per window: centre time, the best lag (offset at the centre) and its 1σ from the cost curvature."""
    t_lo, t_hi = float(p.t0.min()), float(p.t1.max())
    span = t_hi - t_lo
    w = float(np.clip(span / 8, *lim.window_s))
    n = max(1, int(span // w))
    edges = np.linspace(t_lo, t_hi, n + 1)
    # Each pair belongs to the window it lies in entirely (pairs straddling an edge are left out).
    wi = np.clip(np.searchsorted(edges, p.t0, side="right") - 1, 0, n - 1)
    inside = p.t1 <= edges[wi + 1] + 1e-9
    sizes = np.bincount(wi[inside], minlength=n)
    wins = np.flatnonzero(sizes >= 10)
    if not len(wins):
        return []
    m = inside & np.isin(wi, wins)
    sub = _Pairs(p.t0[m], p.t1[m], p.rate[m], p.idx[m])
    sizes = sizes[wins]
    tcs = 0.5 * (edges[wins] + edges[wins + 1])
    step = 0.001
    # Coarse-to-fine: a 4 ms grid over the whole search range around the lag the current fit
    # predicts at each window's centre, then 1 ms around each window's best.
    grid = np.arange(-search_s, search_s + 1e-9, 4 * step)
    centers = stream_time(tcs, offset, drift) - tcs
    cost, _ = _window_costs(sub, ev, sizes, centers, tcs, drift, grid)
    j = np.argmin(cost, axis=0)
    keep = np.isfinite(cost[j, np.arange(len(wins))]) & ((j > 0) & (j < len(grid) - 1) if len(grid) > 1 else True)
    if not keep.any():
        return []
    sel = np.repeat(keep, sizes)
    sub = _Pairs(sub.t0[sel], sub.t1[sel], sub.rate[sel], sub.idx[sel])
    wins, sizes, tcs, centers = wins[keep], sizes[keep], tcs[keep], (centers + grid[j])[keep]
    fine = np.arange(-5 * step, 5 * step + 1e-9, step)
    cost, used = _window_costs(sub, ev, sizes, centers, tcs, drift, fine)
    out = []
    for i, w in enumerate(wins):
        c = cost[:, i]
        k = int(np.argmin(c))
        if not np.isfinite(c[k]) or k in (0, len(fine) - 1):
            continue
        lag = centers[i] + fine[k] + step * _parabola(c, k)
        curv = (c[k - 1] - 2 * c[k] + c[k + 1]) / step**2  # of the per-sample mean cost
        nres = int(used[k, i]) * 3
        sigma2 = c[k] * nres / max(nres - 1, 1)  # residual variance per component
        var = 2 * sigma2 / max(curv * nres, 1e-30) if curv > 0 else np.inf
        a = int(np.sum(sizes[:i]))
        win = _Pairs(sub.t0[a:a + sizes[i]], sub.t1[a:a + sizes[i]], sub.rate[a:a + sizes[i]], sub.idx[a:a + sizes[i]])
        agree = _agreement(win, ev, lag - drift * float(tcs[i]), drift)
        if agree < lim.min_window_ncc:  # the lag of a window where the picture and the stream disagree is noise
            continue
        out.append({"t_s": float(tcs[i]), "span_s": (float(edges[w]), float(edges[w + 1])), "lag_s": float(lag),
                    "sigma_s": float(np.sqrt(var)), "pairs": int(sizes[i]), "rms_rad_s": float(np.sqrt(c[k])),
                    "ncc": agree})
    return out


def _agreement(p: _Pairs, ev: list[RotationEvidence], offset: float, drift: float) -> float:
    """Correlation of the video's and the streams' rotation rates over these pairs, at one clock line.

    A window's lag is only evidence where the picture and the stream move together: in a window
    where the camera hardly turns, the cost still has a minimum, set by noise (and by vibration
    the gyro sees and the frame-averaged picture cannot), with a deceptively small σ.
    """
    num = den_v = den_g = 0.0
    for e in ev:
        s0, s1 = stream_time(p.t0, offset, drift), stream_time(p.t1, offset, drift)
        lo, hi = e.span
        ok = (s0 >= lo) & (s1 <= hi)
        if ok.sum() < 3:
            continue
        g = e.increments(s0[ok], s1[ok]) / (p.t1 - p.t0)[ok, None]
        v = p.rate[ok]
        v, g = v - v.mean(0), g - g.mean(0)
        num, den_v, den_g = num + float(np.sum(v * g)), den_v + float(np.sum(v * v)), den_g + float(np.sum(g * g))
    return float(num / np.sqrt(den_v * den_g)) if den_v > 0 and den_g > 0 else 0.0


def robust_line(t: np.ndarray, y: np.ndarray, sigma: np.ndarray, fit_drift: bool = True, iters: int = 20,
                drift_sigma: float = np.inf):
    """Huber-IRLS weighted line y ≈ a + b·t; returns (a, b, cov 2×2, scale, weights).

    ``drift_sigma`` is a zero-mean Gaussian prior on the slope b: a few seconds of noisy lags
    cannot pin the drift down, and the prior keeps it to what real clocks do.
    """
    t, y, sigma = map(np.asarray, (t, y, sigma))
    A = np.c_[np.ones_like(t), t] if fit_drift else np.c_[np.ones_like(t)]
    P = np.zeros((A.shape[1], A.shape[1]))
    if fit_drift and np.isfinite(drift_sigma):
        P[1, 1] = 1.0 / drift_sigma**2
    hw = np.ones_like(t)
    scale = 1.0
    for _ in range(iters):
        W = hw / sigma**2
        AtW = A.T * W
        coef = np.linalg.solve(AtW @ A + P * scale**2, AtW @ y)
        z = (y - A @ coef) / sigma
        scale = max(1.4826 * _median(np.abs(z)), 1.0) if len(t) > 2 else 1.0
        u = np.abs(z) / (1.345 * scale)
        hw_new = np.where(u <= 1, 1.0, 1.0 / np.maximum(u, 1e-12))
        if np.all(np.abs(hw_new - hw) <= 1e-8 + 1e-5 * np.abs(hw)):  # np.allclose, without its overhead
            break
        hw = hw_new
    W = hw / sigma**2
    cov = np.linalg.inv((A.T * W) @ A / scale**2 + P)
    if not fit_drift:
        coef = np.r_[coef, 0.0]
        cov = np.array([[cov[0, 0], 0.0], [0.0, 0.0]])
    return float(coef[0]), float(coef[1]), cov, scale, hw


def _median(x: np.ndarray) -> float:
    """np.median of a short 1-D array (a sort; np.median's generic machinery costs more than that)."""
    a = np.sort(x)
    n = len(a)
    return float(0.5 * (a[(n - 1) // 2] + a[n // 2]))


def find_jump(t: np.ndarray, y: np.ndarray, sigma: np.ndarray, lim: Limits) -> dict | None:
    """A single step in the window lags (common drift) that explains them far better than a line."""
    if len(t) < 4:
        return None
    best = None
    _, _, _, s_line, _ = robust_line(t, y, sigma)
    for k in range(2, len(t) - 1):  # at least two windows each side
        A = np.c_[np.ones_like(t), t, (np.arange(len(t)) >= k).astype(float)]
        W = 1 / sigma**2
        coef = np.linalg.solve((A.T * W) @ A, (A.T * W) @ y)
        chi2 = float(np.sum(W * (y - A @ coef) ** 2))
        if best is None or chi2 < best[0]:
            cov = np.linalg.inv((A.T * W) @ A)
            best = (chi2, k, coef, cov)
    chi2, k, coef, cov = best
    line_chi2 = float(np.sum((y - np.polyval(np.polyfit(t, y, 1, w=1 / sigma), t)) ** 2 / sigma**2))
    scale = max(np.sqrt(chi2 / max(len(t) - 3, 1)), 1.0)
    step, step_sigma = float(coef[2]), float(np.sqrt(cov[2, 2]) * scale)
    if abs(step) * 1e3 < lim.jump_min_ms or abs(step) < lim.jump_sigmas * step_sigma or line_chi2 < 4 * chi2:
        return None
    return {"after_window": k, "between_s": (float(t[k - 1]), float(t[k])), "step_s": step, "sigma_s": step_sigma,
            "line_scale": s_line}


def polish(p: _Pairs, ev: list[RotationEvidence], offset: float, drift: float, tc: float, iters: int = 8,
           drift_sigma: float = np.inf):
    """Gauss–Newton with Huber weights on all frame pairs: (offset at tc, drift, gyro biases)."""
    n_bias = sum(e.has_bias for e in ev)
    x = np.zeros(2 + 3 * n_bias)
    x[0], x[1] = offset, drift
    h = 1e-3
    kt, _, i1 = _knots(p.t0, p.t1)  # each frame time once: C there and ±h gives increments and rates
    dt_all = (p.t1 - p.t0)[:, None]
    for _ in range(iters):
        rows_J, rows_r, bias_col = [], [], 2
        s0 = stream_time(p.t0, x[0], x[1], tc)
        s1 = stream_time(p.t1, x[0], x[1], tc)
        sk = stream_time(kt, x[0], x[1], tc)
        for e in ev:
            lo, hi = e.span
            ok = (s0 >= lo + h) & (s1 <= hi - h)
            c = e.at(np.stack([sk - h, sk, sk + h]))
            rate = (c[2] - c[0]) / (2 * h)
            k1 = i1[ok]
            dt = dt_all[ok]
            pred = (np.take(c[1], k1, axis=0) - np.take(c[1], k1 - 1, axis=0)) / dt
            w0, w1 = np.take(rate, k1 - 1, axis=0), np.take(rate, k1, axis=0)
            r = p.rate[ok] - pred
            J = np.zeros((ok.sum(), 3, len(x)))
            J[:, :, 0] = (w1 - w0) / dt  # d pred / d offset
            J[:, :, 1] = (w1 * (p.t1[ok, None] - tc) - w0 * (p.t0[ok, None] - tc)) / dt
            if e.has_bias:
                r = r - x[bias_col : bias_col + 3]
                J[:, :, bias_col : bias_col + 3] = np.eye(3)
                bias_col += 3
            rows_J.append(J.reshape(-1, len(x)))
            rows_r.append(r.reshape(-1))
        J = np.concatenate(rows_J)
        r = np.concatenate(rows_r)
        if len(r) < 10:
            return None
        s = 1.4826 * np.median(np.abs(r)) + 1e-12
        u = np.abs(r) / (1.345 * s)
        w = np.where(u <= 1, 1.0, 1.0 / u)
        Jw, rw = J * np.sqrt(w)[:, None], r * np.sqrt(w)
        if np.isfinite(drift_sigma):  # the prior as one more (scaled) residual: drift/σ_d in units of s
            prior = np.zeros((1, len(x)))
            prior[0, 1] = s / drift_sigma
            Jw, rw = np.vstack([Jw, prior]), np.r_[rw, -s * x[1] / drift_sigma]
        dx = np.linalg.lstsq(Jw, rw, rcond=None)[0]
        x = x + dx
        if abs(dx[0]) < 1e-6 and abs(dx[1]) < 1e-7:  # 1 µs, 0.1 ppm: far below what the data resolve
            break
    return x[0], x[1], [list(map(float, x[2 + 3 * i : 5 + 3 * i])) for i in range(n_bias)]


def _frame_residual(p: _Pairs, ev: list[RotationEvidence], fit: ClockFit, n_pairs: int, t_ref_s: float,
                    bias: list[list[float]] | None) -> np.ndarray:
    """|video rate − stream rate| per frame pair after sync (rad/s); NaN where either is unknown."""
    out = np.full(n_pairs, np.nan)
    s0 = fit.to_stream_s(p.t0 + t_ref_s) - t_ref_s
    s1 = fit.to_stream_s(p.t1 + t_ref_s) - t_ref_s
    per = []
    bi = 0
    for e in ev:
        pred = e.increments(s0, s1) / (p.t1 - p.t0)[:, None]
        if e.has_bias and bias:
            pred = pred + np.asarray(bias[bi])
            bi += 1
        r = np.linalg.norm(p.rate - pred, axis=1)
        lo, hi = e.span
        r[(s0 < lo) | (s1 > hi)] = np.nan
        per.append(r)
    if per:
        stack = np.stack(per)
        known = ~np.all(np.isnan(stack), axis=0)
        out[p.idx[known]] = np.nanmax(stack[:, known], axis=0)
    return out


def rate_ratio(p: _Pairs, ev: list[RotationEvidence], fit: ClockFit, t_ref_s: float) -> float:
    """RMS of the video's rotation rate over RMS of the stream's, on the same frame pairs after sync.

    About 1 when the picture turns with the body (more with parallax, off by the focal-length
    error with guessed intrinsics). In-camera stabilisation counter-rotates the image, so the
    video turns far less than the gyro says: the one symptom of stabilised footage that the
    numbers themselves show. Means are removed first (a gyro bias is not motion).
    """
    s0 = fit.to_stream_s(p.t0 + t_ref_s) - t_ref_s
    s1 = fit.to_stream_s(p.t1 + t_ref_s) - t_ref_s
    num = den = 0.0
    for e in ev:
        lo, hi = e.span
        ok = (s0 >= lo) & (s1 <= hi)
        if ok.sum() < 10:
            continue
        g = e.increments(s0[ok], s1[ok]) / (p.t1 - p.t0)[ok, None]
        v = p.rate[ok]
        num += float(np.sum((v - v.mean(0)) ** 2))
        den += float(np.sum((g - g.mean(0)) ** 2))
    return float(np.sqrt(num / den)) if den > 0 else float("nan")


# ---------------------------------------------------------------- one clock, end to end


def shown_s(pts_ns: np.ndarray) -> float:
    """How long frames at these PTS (ns) are shown: N frames last N frame intervals, the last one
    included, so 60 frames at 30 fps are 2 s (first to last frame would say 1.97 s)."""
    if len(pts_ns) < 2:
        return 0.0
    return float(pts_ns[-1] - pts_ns[0] + np.median(np.diff(pts_ns))) * 1e-9


@dataclass
class _Line:
    """The window search's answer: the lags per window and the robust line through them (relative time)."""

    windows: list[dict]
    offset: float  # at relative t = 0
    drift: float
    cov: np.ndarray  # 2×2 of (offset, drift)
    weights: np.ndarray  # Huber weight per window
    fit_drift: bool  # enough windows to fit a drift (else fixed)


def estimate_clock(clock: str, streams: list[str], vis: VisualRotations, ev: list[RotationEvidence],
                   t_ref_ns: int, fps: float, lim: Limits = Limits(), prior: Prior | None = None,
                   quick: bool = False) -> ClockFit:
    """Offset, drift (and jump) of one motion clock against the video, with a verdict and reason.

    The steps, each its own function: ``_check_evidence`` (is there anything to sync?),
    ``_coarse`` (the ±``max_lag_s`` correlation), ``_window_line`` (per-window lags and a robust
    line), ``_clock_model`` (a jump, or the all-frame polish), ``_measure`` (σ, residuals, rate
    ratio) and ``_judge`` (the verdict). ``prior``: what an earlier fit of this clock (or a chain
    through other clocks) found: the correlation search is skipped and the windows start from its
    line. ``quick`` stops after the window line (no jump, polish or residuals): what a first pass
    that only places another stream on the frame times needs.
    """
    names = [e.name for e in ev]
    t_ref_s = t_ref_ns * 1e-9

    def failed(reason: str, **kw) -> ClockFit:
        return ClockFit(clock, streams, names, [], FAILED, reason, **kw)

    problem = _check_evidence(clock, vis, ev, lim)
    if problem:
        return failed(problem)
    p = _pairs(vis, t_ref_ns)
    motion = float(np.sqrt(np.mean(np.sum((p.rate - p.rate.mean(0)) ** 2, axis=1))))
    if motion < lim.min_motion_rad_s:
        return failed(f"no motion: the camera turns at {motion:.3f} rad/s RMS (need ≥ {lim.min_motion_rad_s})")
    offset, common, problem = _coarse(p, ev, lim, prior)
    if problem:
        return failed(problem.replace("{names}", "+".join(names)), **common)
    line = _window_line(p, ev, offset, common["coarse_drift"], lim, prior)
    one_piece = len(line.windows) < lim.min_windows and len(line.windows) >= 1 and common["peak_ncc"] >= lim.ok_ncc
    if len(line.windows) < lim.min_windows and not one_piece:
        return failed(f"too little motion: {len(line.windows)} window(s) with a clear lag (need {lim.min_windows})",
                      **common)
    if quick:
        return ClockFit(clock, streams, names, [Segment(-np.inf, model_offset(line.offset, line.drift, t_ref_s), line.drift)],
                        OK, "window line only (quick)", **common)
    segs_rel, bias, jump, notes, polished = _clock_model(p, ev, line, lim, t_ref_s, offset)
    segments = [Segment(start + t_ref_s if np.isfinite(start) else -np.inf, model_offset(o, d, t_ref_s), d)
                for start, o, d in segs_rel]
    fit = ClockFit(clock, streams, names, segments, OK, "", jump=jump, bias_rad_s=bias[0] if bias else None, **common)
    _measure(fit, p, ev, line, len(vis.valid), t_ref_s, bias)
    return _judge(fit, line, notes, polished, fps, lim, SUSPECT if jump else OK)


def _check_evidence(clock: str, vis: VisualRotations, ev: list[RotationEvidence], lim: Limits) -> str | None:
    """Why there is nothing to sync (no rotation stream, too short, no texture), or None."""
    if not ev:
        return f"no stream on clock {clock!r} measures the camera's rotation (hands alone are not evidence)"
    duration = shown_s(vis.pts_ns)
    if duration < lim.min_duration_s:
        return f"too short: {duration:.2f} s of video (need ≥ {lim.min_duration_s} s)"
    frac = float(vis.valid.mean()) if len(vis.valid) else 0.0
    if frac < lim.min_valid_pairs:
        return f"no texture: only {100 * frac:.0f}% of frame pairs had enough trackable corners"
    return None


def _coarse(p: _Pairs, ev: list[RotationEvidence], lim: Limits, prior: Prior | None) -> tuple[float, dict, str | None]:
    """The correlation step: (offset, the fields every fit reports, why it failed or None)."""
    lo = max(e.span[0] for e in ev)
    hi = min(e.span[1] for e in ev)
    t_lo, t_hi = p.t0.min(), p.t1.max()
    # Where to search: offset 0 when the clocks roughly agree, else line up the starts.
    overlap = max(0.0, min(hi, t_hi) - max(lo, t_lo)) / max(t_hi - t_lo, 1e-9)
    center = 0.0 if overlap >= lim.min_coverage else lo - t_lo
    near = None if prior is None else (prior.coarse_s, prior.peak_ratio, prior.coarse_drift)
    offset, ncc, ratio, coarse_drift = coarse_offset(p, ev, center, lim, near)
    common = dict(peak_ncc=ncc, peak_ratio=ratio, coarse_offset_ms=(offset + 0.0) * 1e3, coarse_drift=coarse_drift)
    s_lo, s_hi = t_lo + offset, t_hi + offset
    cover = max(0.0, min(hi, s_hi) - max(lo, s_lo)) / max(s_hi - s_lo, 1e-9)
    if cover < lim.min_coverage:
        return offset, common, f"the stream covers only {100 * cover:.0f}% of the video once aligned"
    if ncc < lim.min_ncc:
        return offset, common, f"video and {{names}} rotations do not match (peak correlation {ncc:.2f} < {lim.min_ncc})"
    if ratio > lim.max_peak_ratio:
        return offset, common, f"ambiguous: a second correlation peak reaches {100 * ratio:.0f}% of the first"
    return offset, common, None


def _window_line(p: _Pairs, ev: list[RotationEvidence], coarse: float, coarse_drift: float, lim: Limits,
                 prior: Prior | None) -> _Line:
    """Windows → robust line (two passes: the second searches along the first pass's drift).

    A healthy oscillator drifts < ~1000 ppm; a broken clock can drift far more and then the
    windows, searched for the healthy range, find no lag at the ends: search again much wider
    before giving up.
    """
    span = p.t1.max() - p.t0.min()
    line = _Line([], coarse, coarse_drift, np.zeros((2, 2)), np.array([]), False)
    for max_ppm in (lim.max_drift_ppm, lim.heavy_drift_ppm):
        search = max_ppm * 1e-6 * span / 2 + 0.015
        offset, drift = coarse, coarse_drift
        if prior is not None and max_ppm == lim.max_drift_ppm:
            offset, drift, search = prior.offset_s, prior.drift, prior.search_s
        line = _Line([], offset, drift, np.zeros((2, 2)), np.array([]), False)
        for _ in range(2):
            wins = window_lags(p, ev, offset, drift, search, lim)
            if not wins:
                break
            tw, yw, sw = _window_arrays(wins)
            use_drift = len(wins) >= lim.min_windows_for_drift
            d_sigma = lim.drift_prior_ppm * 1e-6 * (1.0 if max_ppm == lim.max_drift_ppm else max_ppm / lim.max_drift_ppm)
            a, drift, cov, scale, hw = robust_line(tw, yw, sw, fit_drift=use_drift, drift_sigma=d_sigma)
            offset = a  # offset at t = 0 of the relative clock
            line = _Line(wins, a, drift, cov, hw, use_drift)
            search = min(search, 0.01 + 4 * scale * float(np.max(sw)))
        if len(line.windows) >= lim.min_windows:
            break
    return line


def _window_arrays(wins: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre times, lags and σ (floored at 50 µs) of the windows."""
    return (np.array([w["t_s"] for w in wins]), np.array([w["lag_s"] for w in wins]),
            np.maximum(np.array([w["sigma_s"] for w in wins]), 5e-5))


def _clock_model(p: _Pairs, ev: list[RotationEvidence], line: _Line, lim: Limits, t_ref_s: float, coarse: float):
    """One line (polished on all frames) or two segments around a clock jump.

    With one usable window there is no line: the drift is fixed at 0 and the offset is where the
    correlation of all frames peaks (``ncc_peak``). The windows' robust least-squares cost, with
    its per-window gyro bias, is not used for it: when the one stretch of motion runs up to the
    end of the video (the real HERO5 clip's pan does), shifting the stream moves part of its
    motion off the frames, which lowers a least-squares cost but not a correlation (8 ms apart on
    that clip: −23 ms against −31 ms from the correlation, plain least squares and scaled least
    squares alike).

    Returns (segments as (start, offset, drift) in relative time, gyro bias, jump record, notes, polished).
    """
    tw, yw, sw = _window_arrays(line.windows)
    jump = find_jump(tw, yw, sw, lim) if line.fit_drift else None
    notes: list[str] = []
    if jump is not None:
        segs_rel, jump_rec, note = _jump_segments(p, ev, line, jump, lim, t_ref_s)
        return segs_rel, None, jump_rec, [note], False
    offset, drift = line.offset, line.drift
    tc = float(np.mean(tw))
    if len(line.windows) < lim.min_windows:
        return [(-np.inf, ncc_peak(p, ev, coarse), 0.0)], None, None, notes, False
    pol = polish(p, ev, stream_time(tc, offset, drift) - tc, drift, tc, drift_sigma=lim.drift_prior_ppm * 1e-6)
    if pol is None:
        return [(-np.inf, offset, drift)], None, None, notes, False
    o_c, d, bias = pol
    # Accept the polish only where the windows agree with it (it has no outlier windows to hide).
    o_line_c = stream_time(tc, offset, drift) - tc
    cov = line.cov
    sig_c = float(np.sqrt(cov[0, 0] + 2 * tc * cov[0, 1] + tc**2 * cov[1, 1]))
    if abs(o_c - o_line_c) <= max(4 * sig_c, POLISH_GATE_S):
        return [(-np.inf, model_offset(o_c, d, tc), d)], bias, None, notes, True
    notes.append("all-frame polish disagreed with the window fit; kept the window fit")
    return [(-np.inf, offset, drift)], None, None, notes, False


def _jump_segments(p: _Pairs, ev: list[RotationEvidence], line: _Line, jump: dict, lim: Limits, t_ref_s: float):
    """Two lines, one each side of a clock jump, and the jump's time, size and σ."""
    tw, yw, sw = _window_arrays(line.windows)
    k = jump["after_window"]
    spans = np.array([w["span_s"] for w in line.windows])

    def side_fits(sel_a: np.ndarray, sel_b: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
        """A line on each side of the step; a side with too few windows for a drift of its own takes
        the other side's (the line through all windows is bent by the step itself)."""
        lines = []
        for sel in (sel_a, sel_b):
            if sel.sum() >= lim.min_windows_for_drift:
                a_i, d_i, _, _, _ = robust_line(tw[sel], yw[sel], sw[sel], drift_sigma=lim.drift_prior_ppm * 1e-6)
                lines.append((a_i, d_i))
            else:
                lines.append(None)
        out = []
        for sel, fitted, other in ((sel_a, lines[0], lines[1]), (sel_b, lines[1], lines[0])):
            if fitted is None:
                d_i = other[1] if other is not None else line.drift
                fitted = (float(np.average(yw[sel] - d_i * tw[sel], weights=1 / sw[sel] ** 2)), d_i)
            out.append(fitted)
        return out[0], out[1]

    idx = np.arange(len(tw))
    before, after = side_fits(idx < k, idx >= k)
    # The step lies in window k-1 or k (either may straddle it): look through both, frame by frame.
    t_jump = _jump_time(p, ev, (None, *before), (None, *after), (spans[k - 1][0], spans[k][1]))
    clean = (spans[:, 1] <= t_jump) | (spans[:, 0] >= t_jump)  # windows that straddle the step are mixtures
    before, after = side_fits(clean & (tw < t_jump), clean & (tw >= t_jump))
    segs_rel = [(-np.inf, *before), (t_jump, *after)]
    step_ms = ((stream_time(t_jump, *after) - stream_time(t_jump, *before))) * 1e3
    rec = {"at_s": round(t_jump + t_ref_s, 6), "step_ms": round(step_ms, 3), "sigma_ms": round(jump["sigma_s"] * 1e3, 3)}
    return segs_rel, rec, f"clock jump of {step_ms:+.1f} ms at t={t_jump + t_ref_s:.2f} s"


def _measure(fit: ClockFit, p: _Pairs, ev: list[RotationEvidence], line: _Line, n_pairs: int, t_ref_s: float,
             bias: list[list[float]] | None) -> None:
    """σ, residuals, rate ratio and the window table of a fit (in place)."""
    tw, yw, sw = _window_arrays(line.windows)
    cov = line.cov
    # Uncertainty: from the window scatter (captures slow, correlated errors that per-frame noise misses).
    tt = p.t0
    sig = np.sqrt(np.maximum(cov[0, 0] + 2 * tt * cov[0, 1] + tt**2 * cov[1, 1], 0.0))
    fit.sigma_ms = float(np.max(sig)) * 1e3
    model = np.interp(tw, tt, fit.to_stream_s(tt + t_ref_s) - t_ref_s - tt)
    fit.residual_ms = float(np.sqrt(np.average((yw - model) ** 2, weights=1 / sw**2))) * 1e3
    fit.frame_residual = _frame_residual(p, ev, fit, n_pairs, t_ref_s, [bias[0]] if bias else None)
    fit.residual_rad_s = float(np.sqrt(np.nanmean(fit.frame_residual**2)))
    fit.rate_ratio = rate_ratio(p, ev, fit, t_ref_s)
    fit.windows = [{"t_s": round(w["t_s"] + t_ref_s, 4), "lag_ms": round(w["lag_s"] * 1e3, 4),
                    "sigma_ms": round(w["sigma_s"] * 1e3, 4), "ncc": round(w["ncc"], 3), "weight": round(float(h), 3)}
                   for w, h in zip(line.windows, line.weights)]
    fit.confidence = float(max(fit.peak_ncc, 0.0) * np.exp(-fit.sigma_ms / CONFIDENCE_SCALE_MS))


def _judge(fit: ClockFit, line: _Line, notes: list[str], polished: bool, fps: float, lim: Limits,
           verdict: str = OK) -> ClockFit:
    """The verdict and its reason from the measured fit; every threshold is in ``Limits``."""
    frame_s = 1.0 / fps
    if fit.sigma_ms * 1e-3 > lim.max_sigma_frac * frame_s:
        fit.verdict, fit.reason = FAILED, f"timing uncertainty {fit.sigma_ms:.1f} ms exceeds a quarter frame"
        return fit
    n = len(line.windows)
    if n < lim.min_windows:
        w = line.windows[0]
        verdict = worst(verdict, SUSPECT)
        notes.append(f"the picture and the motion stream agree in only {n} window ({w['span_s'][0]:.1f}–"
                     f"{w['span_s'][1]:.1f} s into the video; elsewhere the camera hardly turns): offset at the "
                     "correlation peak of all frames, drift not measurable (fixed at 0)")
    elif not line.fit_drift:
        verdict = worst(verdict, SUSPECT)
        notes.append(f"only {n} usable window(s): drift "
                     + ("from the all-frame fit, weakly determined" if polished else "not estimated (fixed at 0)"))
    if fit.peak_ncc < lim.ok_ncc:
        verdict = worst(verdict, SUSPECT)
        notes.append(f"weak correlation (peak {fit.peak_ncc:.2f})")
    if fit.sigma_ms > lim.ok_sigma_ms:
        verdict = worst(verdict, SUSPECT)
        notes.append(f"timing uncertainty {fit.sigma_ms:.2f} ms")
    if fit.residual_ms > lim.ok_residual_ms:
        verdict = worst(verdict, SUSPECT)
        notes.append(f"window lags scatter {fit.residual_ms:.1f} ms about the fit")
    if abs(fit.drift_ppm) > lim.ok_drift_ppm:
        verdict = worst(verdict, SUSPECT)
        notes.append(f"implausible drift {fit.drift_ppm:.0f} ppm")
    fit.verdict = verdict
    fit.reason = "; ".join(notes) if notes else f"peak correlation {fit.peak_ncc:.2f}, ±{fit.sigma_ms:.2f} ms (1σ)"
    return fit


def _jump_time(p: _Pairs, ev: list[RotationEvidence], before: tuple, after: tuple, between: tuple[float, float]) -> float:
    """Where, between two window centres, the per-frame mismatch switches from one model to the other."""
    m = (p.t0 >= between[0]) & (p.t1 <= between[1])
    if m.sum() < 2:
        return 0.5 * (between[0] + between[1])
    sub = _Pairs(p.t0[m], p.t1[m], p.rate[m], p.idx[m])
    costs = []
    for _, o, d in (before, after):
        r = _residuals(sub, ev, np.array([o]), d, 0.0)[0]
        c = np.nansum(r**2, axis=1).reshape(len(ev), -1).sum(0)
        costs.append(c)
    ca, cb = costs
    # Break before pair j: pairs < j follow `before`, pairs ≥ j follow `after`.
    total = np.r_[0.0, np.cumsum(ca)] + np.r_[np.cumsum(cb[::-1])[::-1], 0.0]
    j = int(np.argmin(total))
    return float(sub.t0[j]) if j < len(sub.t0) else float(sub.t1[-1])
