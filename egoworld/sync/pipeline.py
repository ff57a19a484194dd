"""Sync one session end to end: video rotation → per-clock fit → aligned episode + sync.json.

Never reads ``truth/``. Never raises for a bad session: a session that cannot be synced gets a
``sync.json`` with verdict ``failed`` and the reason (naming the file when a file is at fault),
so one bad session never stops a batch.
"""
from __future__ import annotations

import functools
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from egoworld import quat as Q
from egoworld._atomic import write_json
from egoworld.session import HEAD_MOTION_STREAMS, Session, SessionError, open_session
from egoworld.sync.episode import aligned_table, dropped_frames, write_episode
from egoworld.sync.estimate import (
    CONFIDENCE_SCALE_MS,
    FAILED,
    OK,
    SUSPECT,
    ClockFit,
    Limits,
    Prior,
    Segment,
    compose_models,
    estimate_clock,
    inverse_model,
    model_offset,
    stream_time,
    worst,
)
from egoworld.sync.evidence import RotationEvidence, session_evidence
from egoworld.sync.resample import interp_linear, slerp
from egoworld.sync.visual import (
    MAX_SIDE,
    SUPPORTED_CAMERAS,
    VisualRotations,
    rotations_given_translation,
    visual_rotations,
)
from egoworld.video import VideoError

METHOD = (
    "visual-inertial rotation matching: LK corner tracks → per-frame camera rotation (Kabsch, robust); "
    "coarse NCC over ±max_lag, windowed sub-sample lag refinement, Huber line fit (offset + drift), "
    "jump test, Gauss–Newton polish on all frame pairs"
)
CAMERA_CLOCK = "camera"
# Streams whose clock must sync for the episode (the action) to exist; others are optional extras.
ESSENTIAL = ("head_pose", "hands")


def _session_id(path: Path, session: Session | None) -> str:
    return session.id if session is not None else path.name


def _same_clock(clock: str, streams: list[str]) -> ClockFit:
    return ClockFit(clock, streams, [], [Segment(-np.inf, 0.0, 0.0)], OK, "same clock as the video", confidence=1.0,
                    residual_ms=0.0, sigma_ms=0.0)


def sync_session(path: str | Path, out_root: str | Path, limits: Limits = Limits(), max_side: int = MAX_SIDE) -> dict:
    """Sync the session at ``path``; writes ``out_root/<session_id>/{aligned.parquet, sync.json}``.

    Returns the summary row for the batch table (what sync.json holds, minus the per-window detail).
    """
    path = Path(path)
    t_start = time.perf_counter()
    session: Session | None = None
    report: dict = {"session_id": path.name, "session_path": str(path), "method": METHOD}
    try:
        session = open_session(path)
        _share_arrays(session)
        report["session_id"] = session.id
        model = session.meta["rig"].get("camera_model")
        if model not in SUPPORTED_CAMERAS:
            raise SessionError(path / "session.json", f"rig.camera_model {model!r} is not supported by sync {SUPPORTED_CAMERAS}")
        vis = visual_rotations(session.video_path, session.meta["rig"], max_side=max_side)
        fits = apply_stabilisation(session.meta["rig"], _fit_clocks(session, vis, limits), limits)
        report.update(_verdict(session, fits))
        report["video"] = _video_summary(session, vis)
        report["clocks"] = {c: f.to_json() for c, f in fits.items()}
        report["streams"] = {
            name: {"clock": spec["clock"], "offset_ms": report["clocks"][spec["clock"]]["offset_ms"],
                   "drift_ppm": report["clocks"][spec["clock"]]["drift_ppm"],
                   "verdict": fits[spec["clock"]].verdict, "dropped_samples": _dropped_samples(session, name)}
            for name, spec in session.meta["streams"].items()
        }
    except (SessionError, VideoError) as e:
        report.update({"verdict": FAILED, "reason": f"cannot read the session: {e}", "clocks": {}, "streams": {}})
    else:
        _write_episode(session, vis, fits, report, Path(out_root) / session.id)
    elapsed = time.perf_counter() - t_start
    duration = float(report.get("video", {}).get("duration_s") or 0.0)
    report["timing"] = {"seconds": round(elapsed, 4), "x_real_time": round(duration / elapsed, 1) if elapsed else None}
    out = Path(out_root) / report["session_id"]
    write_json(out / "sync.json", report)
    return report


def _share_arrays(session: Session) -> None:
    """Convert each stream to numpy once per sync: the evidence, the translation, the episode and
    the drop count all read the same streams (sync only reads them; nothing writes into them)."""
    session.arrays = functools.cache(session.arrays)  # type: ignore[method-assign]


def _write_episode(session: Session, vis: VisualRotations, fits: dict[str, ClockFit], report: dict, out: Path) -> None:
    """Write ``aligned.parquet`` (unless the session failed); records the outcome in ``report``.

    The clock fits are already in ``report`` and stay there whatever happens here: a stream
    file that turns out unreadable while resampling, or a bug in building the table, makes the
    session ``failed`` (no episode) but the offsets that were measured are still reported.
    """
    if report["verdict"] != FAILED:
        try:
            res = [f.frame_residual for f in fits.values() if f.frame_residual is not None]
            frame_res = vis.per_interval(np.fmax.reduce(res) if res else np.full(len(vis.valid), np.nan))
            usable = {c: f for c, f in fits.items() if f.verdict != FAILED}
            table = aligned_table(session, vis.pts_ns, usable, frame_res)
            write_episode(out / "aligned.parquet", table)
            report["aligned"] = {"file": "aligned.parquet", "rows": table.num_rows,
                                 "action_valid": int(np.sum(table.column("action_valid").to_numpy(zero_copy_only=False)))}
            return
        except Exception as e:  # noqa: BLE001 — keep the clock fits; only the episode is lost
            report["verdict"] = FAILED
            report["reason"] = (f"clocks fitted ({report['reason']}), but the aligned episode could not be built: "
                                f"{type(e).__name__}: {e}")
    (out / "aligned.parquet").unlink(missing_ok=True)  # never leave a stale episode beside a failure


def apply_stabilisation(rig: dict, fits: dict[str, ClockFit], limits: Limits = Limits()) -> dict[str, ClockFit]:
    """Judge every fitted clock in the light of in-camera stabilisation (``rig.stabilization``).

    A stabilised camera (GoPro HyperSmooth, phone EIS) warps each frame to cancel the body's
    rotation, so the picture no longer turns with the gyro or the head: the lag that best
    matches the residual image motion need not be the clock offset. With stabilisation on, no
    clock is better than ``suspect`` and its confidence is scaled down; if the video turns at
    less than ``limits.min_rate_ratio`` of the stream's rate, the stabiliser has removed the
    very signal sync matches on, so the clock ``failed``. Without the flag, so slow a video
    only makes the clock ``suspect`` (a wrongly guessed field of view scales the ratio too).
    """
    stab = rig.get("stabilization") or {}
    on = stab.get("in_camera") is True
    out = dict(fits)
    for clock, f in fits.items():
        if clock == CAMERA_CLOCK:
            continue
        if not f.segments:  # failed before any offset: say that the stabiliser is the likely cause
            if on and f.verdict == FAILED:
                detail = f" ({stab['detail']})" if stab.get("detail") else ""
                out[clock] = replace(f, reason=f"in-camera stabilisation is on{detail}: the picture is warped against "
                                               f"the camera's motion, so it cannot be matched with the motion stream — {f.reason}")
            continue
        f = replace(f)
        notes = [f.reason] if f.reason and f.verdict != OK else []
        ratio = f.rate_ratio
        slow = np.isfinite(ratio) and ratio < limits.min_rate_ratio
        if on:
            detail = f" ({stab['detail']})" if stab.get("detail") else ""
            f.confidence = float(f.confidence * limits.stabilised_confidence)
            if slow:
                f.verdict = FAILED
                notes.insert(0, f"stabilised video: the picture turns at {100 * ratio:.0f}% of the motion stream's rate "
                                f"(in-camera stabilisation{detail}); its lag is not the clock offset")
            else:
                f.verdict = worst(f.verdict, SUSPECT)
                notes.insert(0, f"in-camera stabilisation is on{detail}: image motion need not follow the gyro")
        elif slow:
            f.verdict = worst(f.verdict, SUSPECT)
            notes.insert(0, f"the picture turns at only {100 * ratio:.0f}% of the motion stream's rate "
                            "(undeclared stabilisation, or wrong intrinsics?)")
        else:
            continue
        f.reason = "; ".join(notes)
        out[clock] = f
    return out


def _fit_clocks(session: Session, vis: VisualRotations, limits: Limits) -> dict[str, ClockFit]:
    """Fit every motion clock; with a head tracker, twice (the second time parallax-corrected).

    Pass 1 uses rotation-only visual rotations. Its head-clock fit (even a rough one) places the
    tracker's translation on the frame times, which lets visual.rotations_given_translation
    remove the parallax that walking and leaning put into the image; pass 2 fits every clock on
    those cleaner rotations.
    """
    t_ref = int(vis.pts_ns[0])
    evidence = session_evidence(session, t_ref)
    streams = session.meta["streams"]

    def fit(clock: str, v: VisualRotations, **kw) -> ClockFit:
        names = [n for n, s in streams.items() if s["clock"] == clock]
        if clock == CAMERA_CLOCK:
            return _same_clock(clock, names)
        return estimate_clock(clock, names, v, evidence.get(clock, []), t_ref, session.fps, limits, **kw)

    clocks = sorted({s["clock"] for s in streams.values()})
    priors: dict[str, Prior] = {}
    if "head_pose" in streams:
        head_clock = streams["head_pose"]["clock"]
        head = fit(head_clock, vis, quick=True)  # only to place the translation: the window line is enough
        if head.segments:  # pass 2 starts from it instead of searching ±max_lag again
            seg = head.segments[0]
            lag_at_ref = stream_time(t_ref * 1e-9, seg.offset_s, seg.drift) - t_ref * 1e-9  # relative clock's offset
            priors[head_clock] = Prior(head.coarse_offset_ms * 1e-3, head.peak_ratio, lag_at_ref, seg.drift,
                                       coarse_drift=head.coarse_drift)
        t_cam = _camera_translation(session, vis, head)
        if t_cam is not None:
            vis = replace(vis, rotvec=rotations_given_translation(vis, t_cam))
    fits = {clock: fit(clock, vis, prior=priors.get(clock)) for clock in clocks}
    span = (vis.pts_ns[0] * 1e-9, vis.pts_ns[-1] * 1e-9)
    return _combine_through_links(fits, evidence, t_ref, limits, span)


AGREE_SIGMAS, AGREE_MIN_MS = 3.0, 2.0  # own fit vs chain through another clock: allowed disagreement
LINK_RATE_HZ = 20.0  # stream-to-stream comparison: consecutive intervals of 1/20 s (both sensors are far sharper than the video)


def _link(a: RotationEvidence, b: RotationEvidence, t_ref: int, limits: Limits, prior: Prior | None = None) -> ClockFit:
    """Clock b against clock a, from their rotation evidence alone (no video in the loop).

    Two motion sensors see the same rotation at rates far above the video's and with far less
    noise than a 128-pixel image, so their mutual offset and drift come out much sharper than
    either one's against the video; chained with a's video fit they give b a second estimate.
    """
    lo, hi = a.span
    g = np.arange(lo + 0.05, hi - 0.05, 1.0 / LINK_RATE_HZ)  # a's clock, as if it were frame times
    rot = a.increments(g[:-1], g[1:])
    if a.has_bias:  # remove a's mean rate over the session (a gyro bias); b's own fit handles b's
        rot -= np.mean(rot / np.diff(g)[:, None], axis=0) * np.diff(g)[:, None]
    n = len(g) - 1
    pseudo = VisualRotations(pts_ns=np.round(g * 1e9).astype(np.int64) + t_ref, rotvec=rot, valid=np.ones(n, bool),
                             inliers=np.full(n, 100), fit_px=np.zeros(n), width=0, height=0)
    return estimate_clock("link", [], pseudo, [b], t_ref, LINK_RATE_HZ, limits, prior=prior)


def _link_prior(fa: ClockFit, fb: ClockFit, t_ref: int, span_s: tuple[float, float]) -> Prior:
    """Both clocks are fitted against the video already: their fits predict the link (b's lag on a's clock)."""
    t = np.array([span_s[0], 0.5 * (span_s[0] + span_s[1]), span_s[1]])
    sa, sb = fa.to_stream_s(t), fb.to_stream_s(t)
    g, lag = sa - t_ref * 1e-9, sb - sa  # a's clock relative to t_ref; b − a there
    drift = float((lag[2] - lag[0]) / (g[2] - g[0])) if g[2] > g[0] else 0.0
    offset = float(model_offset(lag[1], drift, g[1]))
    return Prior(offset, 0.0, offset, drift, coarse_drift=drift)


def _combine_through_links(fits: dict[str, ClockFit], evidence: dict[str, list[RotationEvidence]], t_ref: int,
                           limits: Limits, span_s: tuple[float, float]) -> dict[str, ClockFit]:
    """Give each clock the evidence of the others: inverse-variance mix of its own fit and the chains.

    The chain also checks the fit: where a clock's own estimate and the one through another
    clock disagree by more than their uncertainties allow, the clock is at best ``suspect`` —
    the video evidence of one of them is lying (parallax, moving hands) and we cannot tell which.
    """
    clocks = [c for c, f in fits.items() if f.segments and len(f.segments) == 1 and evidence.get(c)]
    links: dict[tuple[str, str], Segment] = {}
    link_sigma: dict[tuple[str, str], float] = {}
    for i, a in enumerate(clocks):
        for b in clocks[i + 1 :]:
            link = _link(evidence[a][0], evidence[b][0], t_ref, limits, _link_prior(fits[a], fits[b], t_ref, span_s))
            if link.verdict == FAILED or len(link.segments) != 1:
                continue
            l = link.segments[0]  # s_b = (1+d)·s_a + o  ⇔  s_a = (s_b − o)/(1+d)
            links[a, b] = l
            links[b, a] = Segment(-np.inf, *inverse_model(l.offset_s, l.drift))
            link_sigma[a, b] = link_sigma[b, a] = link.sigma_ms
    t = np.asarray(span_s)
    out = dict(fits)
    for b in clocks:
        own = fits[b].segments[0]
        est = [(own.offset_s, own.drift, fits[b].sigma_ms)]
        notes = []
        for a in clocks:
            if (a, b) not in links:
                continue
            fa, fl = fits[a].segments[0], links[a, b]
            off, drift = compose_models((fl.offset_s, fl.drift), (fa.offset_s, fa.drift))  # video → a → b
            sig = float(np.hypot(fits[a].sigma_ms, link_sigma[a, b]))
            est.append((off, drift, sig))
            gap_ms = float(np.max(np.abs((off - own.offset_s) + (drift - own.drift) * t))) * 1e3
            if gap_ms > max(AGREE_SIGMAS * np.hypot(sig, fits[b].sigma_ms), AGREE_MIN_MS):
                notes.append(f"its own fit and the chain through clock {a} disagree by {gap_ms:.1f} ms")
        if len(est) > 1:
            w = np.array([1.0 / max(e[2], 1e-3) ** 2 for e in est])
            off = float(np.sum(w * [e[0] for e in est]) / w.sum())
            drift = float(np.sum(w * [e[1] for e in est]) / w.sum())
            f = replace(fits[b], segments=[Segment(-np.inf, off, drift)], sigma_ms=float(1.0 / np.sqrt(w.sum())))
            f.evidence = fits[b].evidence + [f"{evidence[a][0].name} (via clock {a})" for a in clocks if (a, b) in links]
            f.confidence = float(max(f.peak_ncc, 0.0) * np.exp(-f.sigma_ms / CONFIDENCE_SCALE_MS))
            if f.sigma_ms > limits.ok_sigma_ms:
                notes.append(f"timing uncertainty {f.sigma_ms:.2f} ms")
            if notes and f.verdict == OK:
                f.verdict, f.reason = SUSPECT, "; ".join(notes)
            elif notes:  # the combined uncertainty replaces the clock's own
                own_notes = [x for x in f.reason.split("; ") if x and not x.startswith("timing uncertainty")]
                f.reason = "; ".join(own_notes + notes)
            out[b] = f
    return out


def _camera_translation(session: Session, vis: VisualRotations, head: ClockFit) -> np.ndarray | None:
    """Camera translation between consecutive frames in the first frame's axes (from head_pose)."""
    if head.segments:
        to_stream = head.to_stream_s
    elif np.isfinite(head.coarse_offset_ms):  # no full fit, but the coarse offset is within ~10 ms
        to_stream = lambda t: t + head.coarse_offset_ms * 1e-3  # noqa: E731
    else:
        return None
    h = session.arrays("head_pose")
    ref = int(vis.pts_ns[0])
    th = (h["t_ns"] - ref) * 1e-9
    ends = []
    for t in (vis.t0_s, vis.t1_s):
        ts = to_stream(t) - ref * 1e-9
        p, _ = interp_linear(th, np.c_[h["px"], h["py"], h["pz"]], ts)
        ends.append(p)
    q, _ = slerp(th, np.c_[h["qw"], h["qx"], h["qy"], h["qz"]], to_stream(vis.t0_s) - ref * 1e-9)
    return Q.batch_rotate(Q.batch_conj(Q.batch_unit(q)), ends[1] - ends[0])


def _verdict(session: Session, fits: dict[str, ClockFit]) -> dict:
    """Session verdict: failed if a clock the episode needs failed; an optional clock failing → suspect."""
    streams = session.meta["streams"]
    # The clocks the episode needs: head_pose/hands when the session has them; an IMU-only
    # session (action camera) has nothing else to sync, so there the IMU clock is the one.
    needed = [s for s in ESSENTIAL if s in streams] or [s for s in HEAD_MOTION_STREAMS if s in streams]
    essential = {streams[s]["clock"] for s in needed}
    verdict, reasons = OK, []
    for clock, f in fits.items():
        if f.verdict == FAILED and clock not in essential:
            verdict = worst(verdict, SUSPECT)
            reasons.append(f"{clock}: failed ({f.reason}); its streams are left out")
        elif f.verdict != OK:
            verdict = worst(verdict, f.verdict)
            reasons.append(f"{clock}: {f.reason}")
    return {"verdict": verdict, "reason": "; ".join(reasons) if reasons else "all clocks synced"}


def _dropped_samples(session: Session, name: str) -> int:
    """Samples missing from a stream: gaps longer than 1.5 median periods (per hand for hands)."""
    a = session.arrays(name)
    groups = [a["t_ns"][a["side"] == s] for s in np.unique(a["side"])] if "side" in a else [a["t_ns"]]
    total = 0
    for t in groups:
        dt = np.diff(t)
        if len(dt):
            med = float(np.median(dt))
            total += int(np.sum(np.maximum(np.round(dt[dt > 1.5 * med] / med) - 1, 0)))
    return total


def _video_summary(session: Session, vis: VisualRotations) -> dict:
    pts = vis.pts_ns
    rates = np.linalg.norm(vis.rotvec[vis.valid], axis=1) / (vis.t1_s - vis.t0_s)[vis.valid] if len(pts) > 1 else []
    return {
        "frames": int(len(pts)),
        "decoded_frames": len(np.unique(vis.pair)) if len(vis.pair) else int(len(pts) > 0),
        "fps": session.fps,
        "duration_s": round(float((pts[-1] - pts[0]) * 1e-9 + 1.0 / session.fps), 4),
        "dropped_frames": dropped_frames(pts, session.fps),
        "pairs_with_rotation": round(float(vis.valid.mean()), 4) if len(vis.valid) else 0.0,
        "median_tracks": float(np.median(vis.inliers)) if len(vis.inliers) else 0.0,
        "median_fit_px": round(float(np.median(vis.fit_px[vis.valid])), 4) if vis.valid.any() else None,
        "rms_rotation_rad_s": round(float(np.sqrt(np.mean(np.square(rates)))), 4) if len(rates) else 0.0,
        "working_size": [vis.width, vis.height],
    }
