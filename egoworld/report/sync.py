"""The report's sync section: estimated vs true clock offset and drift, and the evidence before and after.

The truth (``truth/clocks.json`` of a simulated session) is read here and in
``egoworld.sync.evaluate`` only — the estimator never sees it. The figure shows what sync
matched: the camera's angular velocity from the pixels (frame-to-frame rotation over the frame
interval) against the gyro's, integrated over the same interval on the gyro's own clock —
first with the raw timestamps read as if they were video time, then through the fitted clock
model. A right fit lays the two curves on top of each other.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from egoworld.html import esc, figure, measured_on, png, table
from egoworld.sync.estimate import stream_time

AXES = ("x (pitch)", "y (yaw)", "z (roll)")  # camera axes: x right, y down, z forward


def _stream_time(clock: dict, t_video_s: np.ndarray) -> np.ndarray:
    """Stream-clock seconds of video seconds through a sync.json clock (its segments)."""
    t = np.asarray(t_video_s, dtype=np.float64)
    segs = clock["segments"]
    starts = np.array([-np.inf if s["start_s"] is None else s["start_s"] for s in segs])
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(segs) - 1)
    out = np.empty_like(t)
    for i, s in enumerate(segs):
        m = idx == i
        out[m] = stream_time(t[m], s["offset_ms"] * 1e-3, s["drift_ppm"] * 1e-6)
    return out


def rate_curves(session_path: str | Path, sync: dict, clock: str = "imu") -> dict[str, Any] | None:
    """Visual and stream angular velocity (rad/s, camera axes) per frame pair, before and after correction.

    Returns times (video s), ``visual`` (N, 3), ``before`` and ``after`` (N, 3), the RMS
    mismatch of each (bias removed, as the estimator does for a gyro) and the stream's name;
    None when the clock has no rotation evidence or was not fitted.
    """
    from egoworld.session import open_session
    from egoworld.sync.evidence import session_evidence
    from egoworld.sync.visual import visual_rotations

    c = (sync.get("clocks") or {}).get(clock)
    if not c or not c.get("segments"):
        return None
    session = open_session(session_path)
    vis = visual_rotations(session.video_path, session.meta["rig"])
    t_ref = int(vis.pts_ns[0])
    ev = session_evidence(session, t_ref).get(clock) or []
    if not ev:
        return None
    e = ev[0]
    t0, t1 = vis.t0_s, vis.t1_s  # each measured pair of frames (consecutive, or spanning skipped ones)
    dt = t1 - t0
    visual = np.where(vis.valid[:, None], vis.rotvec / dt[:, None], np.nan)
    ref_s = t_ref * 1e-9
    out: dict[str, Any] = {"t": 0.5 * (t0 + t1) - ref_s, "visual": visual, "stream": e.name, "clock": clock}
    for name, (s0, s1) in (("before", (t0, t1)), ("after", (_stream_time(c, t0), _stream_time(c, t1)))):
        rate = e.increments(s0 - ref_s, s1 - ref_s) / dt[:, None]
        lo, hi = e.span
        rate[(s0 - ref_s < lo) | (s1 - ref_s > hi)] = np.nan
        r = visual - rate
        if e.has_bias:
            r = r - np.nanmean(r, axis=0)
        out[name] = rate
        out[f"rms_{name}"] = float(np.sqrt(np.nanmean(np.sum(r ** 2, axis=1))))
    out["pairs"] = int(np.sum(np.all(np.isfinite(visual), axis=1)))
    return out


def rate_figure(curves: dict[str, Any], session_id: str) -> str:
    """Two panels (before, after): the visual and stream rate about the axis the camera turned most."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(np.nanargmax(np.nanvar(curves["visual"], axis=0)))
    fig, axs = plt.subplots(1, 2, figsize=(12, 3.2), sharey=True)
    for ax, name, title in zip(axs, ("before", "after"), ("before: raw timestamps", "after: fitted offset + drift")):
        ax.plot(curves["t"], curves["visual"][:, k], ".", ms=3, color="tab:blue", label="video (from pixels)")
        ax.plot(curves["t"], curves[name][:, k], "-", lw=1, color="tab:orange", label=curves["stream"])
        ax.set_title(f"{title} — RMS mismatch {curves[f'rms_{name}']:.3f} rad/s", fontsize=10)
        ax.set_xlabel("video time (s)")
        ax.grid(alpha=0.3)
    axs[0].set_ylabel(f"angular velocity {AXES[k]} (rad/s)")
    axs[1].legend(fontsize=8, loc="upper right")
    fig.suptitle(session_id, fontsize=9)
    fig.tight_layout()
    return png(fig)


def clock_rows(session_path: str | Path, sync: dict) -> list[dict[str, Any]]:
    """Per fitted motion clock: estimated and true offset (ms) and drift (ppm), and the errors."""
    truth_file = Path(session_path) / "truth" / "clocks.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
    rows = []
    for clock, c in sorted((sync.get("clocks") or {}).items()):
        if clock == "camera":
            continue
        t = None
        if truth is not None:
            t = next((s for name, s in truth["streams"].items() if name in c["streams"]), None)
        row = {"session_id": sync["session_id"], "clock": clock, "streams": c["streams"], "verdict": c["verdict"],
               "offset_ms": c["offset_ms"], "drift_ppm": c["drift_ppm"], "sigma_ms": c.get("sigma_ms"),
               "true_offset_ms": None, "true_drift_ppm": None, "offset_err_ms": None, "drift_err_ppm": None}
        if t is not None and c["offset_ms"] is not None:
            row.update(true_offset_ms=round(t["offset_ms"], 3), true_drift_ppm=round(t["drift_ppm"], 2),
                       offset_err_ms=round(c["offset_ms"] - t["offset_ms"], 3),
                       drift_err_ppm=round(c["drift_ppm"] - t["drift_ppm"], 2))
        rows.append(row)
    return rows


def _f(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def sync_section(root: Path, sessions: list[str], aggregate: dict | None, plot_sessions: int = 1) -> tuple[str, dict]:
    """HTML of the sync section and the numbers it shows (for report.json)."""
    rows, rates = [], {}
    for i, sid in enumerate(sessions):
        sj = root / "aligned" / sid / "sync.json"
        if not sj.exists():
            continue
        sync = json.loads(sj.read_text())
        rows += clock_rows(root / sid, sync)
        curves = rate_curves(root / sid, sync) if i < plot_sessions else None
        if curves is not None:
            rates[sid] = curves
    parts = ["<h2 id='sync'>Sync</h2>",
             "<p>Every motion sensor runs on its own clock (offset up to ±500 ms, drift up to ±1000 ppm in the "
             "simulator). Sync estimates each clock's offset and drift from the video alone — image rotation against "
             "the gyro and the head tracker — and never reads the truth; the table compares with it.</p>"]
    if aggregate and aggregate.get("frames"):
        parts.append(f"<p><b>Timing error</b> at the video frames: median {aggregate['median_abs_ms']:.2f} ms, p95 "
                     f"{aggregate['p95_abs_ms']:.2f} ms, max {aggregate['max_abs_ms']:.2f} ms; verdicts "
                     f"{esc(', '.join(f'{k} {v}' for k, v in aggregate['verdicts'].items()))}.</p>")
        parts.append(measured_on(f"{aggregate['frames']} frame × stream samples of {aggregate['sessions']} sessions "
                                 "(estimated stream time − true stream time at each frame's PTS, truth/clocks.json)"))
    parts.append(table(
        ["session", "clock", "streams", "offset ms (est)", "offset ms (true)", "error ms", "drift ppm (est)",
         "drift ppm (true)", "error ppm", "1σ ms", "verdict"],
        [[r["session_id"], r["clock"], ", ".join(r["streams"]), _f(r["offset_ms"], ".2f"), _f(r["true_offset_ms"], ".2f"),
          _f(r["offset_err_ms"], "+.2f"), _f(r["drift_ppm"], ".1f"), _f(r["true_drift_ppm"], ".1f"), _f(r["drift_err_ppm"], "+.1f"),
          _f(r["sigma_ms"], ".2f"), r["verdict"]] for r in rows]))
    parts.append(measured_on("each session's sync.json (estimate) against its truth/clocks.json (the simulator's clocks); "
                             "offset at video time 0"))
    for sid, c in rates.items():
        parts.append(figure(rate_figure(c, sid), f"video vs {c['stream']} angular velocity, before and after correction ({sid})"))
        parts.append(measured_on(f"{c['pairs']} frame pairs of {sid} with a visual rotation; the {c['stream']} rate is "
                                 f"its rotation over the same frame interval on its own clock ({c['clock']}), gyro bias removed "
                                 "from the RMS"))
    numbers = {"clocks": rows, "aggregate": aggregate,
               "rate_rms": {sid: {"stream": c["stream"], "before": round(c["rms_before"], 4), "after": round(c["rms_after"], 4),
                                  "pairs": c["pairs"]} for sid, c in rates.items()}}
    return "\n".join(parts), numbers
