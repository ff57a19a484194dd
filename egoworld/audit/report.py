"""The audit as one self-contained HTML file: tables, matplotlib plots and sample frames inline
(base64 PNG), no scripts, no external links — it reads offline and in any browser. The sections are
functions of the audit's result, so the demo's combined report shows the same ones; both stand on
the HTML kit (``egoworld.html``)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from egoworld.dataset import layout as L
from egoworld.html import card, esc, figure, mark, page, png, table, write_page


def heatmap(cells: dict, title: str, fps: float) -> str:
    import matplotlib.pyplot as plt

    m = np.asarray(cells["frames"], dtype=float) / fps / 60
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(cells["cols"]), 0.9 + 0.42 * len(cells["rows"])))
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cells["cols"])), cells["cols"], rotation=30, ha="right")
    ax.set_yticks(range(len(cells["rows"])), cells["rows"])
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, "—" if m[i, j] == 0 else f"{m[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="w" if m[i, j] < m.max() * 0.6 else "k")
    ax.set_title(title + " (minutes)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return png(fig)


def _sync_hist(audit: dict) -> list[tuple[str, str]]:
    """Sync residual and drift per session, against the spec's limits (title, PNG data URI)."""
    import matplotlib.pyplot as plt

    out = []
    per = audit["sync"]["per_session"]
    res = [s["max_residual_ms"] for s in per if s["max_residual_ms"] is not None]
    drift = [s["max_abs_drift_ppm"] for s in per if s["max_abs_drift_ppm"] is not None]
    th = audit["sync"]["thresholds"]
    fig, axs = plt.subplots(1, 2, figsize=(10, 3))
    axs[0].hist(res, bins=20, color="#4477aa")
    axs[0].axvline(th["max_residual_ms"], color="r", ls="--", label="spec limit")
    axs[0].set_xlabel("worst clock residual after sync (ms)")
    axs[0].legend()
    axs[1].hist(drift, bins=20, color="#aa7744")
    axs[1].axvline(th["max_abs_drift_ppm"], color="r", ls="--", label="spec limit")
    axs[1].set_xlabel("worst |clock drift| (ppm)")
    axs[1].set_xscale("symlog", linthresh=100)
    axs[1].legend()
    for a in axs:
        a.set_ylabel("sessions")
    out.append(("Sync residual and drift per session", png(fig)))
    return out


def _motion_hist(audit: dict) -> list[tuple[str, str]]:
    """Head and wrist motion magnitudes per task (needs the audit's in-memory ``_motion_samples``)."""
    import matplotlib.pyplot as plt

    out = []
    motion = audit.get("_motion_samples") or {}
    if motion:
        fig, axs = plt.subplots(1, 3, figsize=(13, 3))
        for k, (key, label) in enumerate((("head_speed", "head speed (m/s)"), ("head_turn", "head turn rate (rad/s)"),
                                          ("wrist_speed", "wrist speed (m/s)"))):
            for task, d in sorted(motion.items()):
                v = np.asarray(d[key])
                if len(v):
                    axs[k].hist(v, bins=40, range=(0, float(np.percentile(v, 99.5)) + 1e-6), histtype="step", label=task, density=True)
            axs[k].set_xlabel(label)
        axs[0].set_ylabel("density")
        if axs[-1].get_legend_handles_labels()[0]:  # a camera-only store has no wrists
            axs[-1].legend(fontsize=8)
        out.append(("Action-space coverage: motion magnitudes per task", png(fig)))
    return out


def session_video(store_root: Path, s: dict) -> Path | None:
    """The video of a catalogued session: its episode in the store, else the source session's."""
    ep = s.get("episode_index")
    if ep is not None:
        path = store_root / L.video_path(ep)
    else:
        path = Path(s.get("path", "")) / "video.mp4"
    return path if path.is_file() else None


def middle_frame(path: Path, width: int = 160) -> str | None:
    """The middle frame of a video, ``width`` px wide, as a PNG data URI (None if it does not decode)."""
    import av
    import cv2

    try:
        with av.open(str(path)) as c:
            target = (c.streams.video[0].frames or 0) // 2
            rgb = None
            for i, f in enumerate(c.decode(video=0)):
                rgb = f.to_ndarray(format="rgb24")
                if i >= target:
                    break
    except av.error.FFmpegError:
        return None
    if rgb is None:
        return None
    h = int(round(rgb.shape[0] * width / rgb.shape[1]))
    rgb = cv2.resize(rgb, (width, h), interpolation=cv2.INTER_AREA)
    _, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def sample_frames(store_root: Path, sessions: list[dict], flagged: set[str], n: int = 12, width: int = 160) -> list[tuple[str, str]]:
    """A middle frame from flagged sessions first, then others (from the store, else the source video)."""
    order = sorted(sessions, key=lambda s: (s["session_id"] not in flagged, s["session_id"]))[:n]
    out = []
    for s in order:
        path = session_video(store_root, s)
        src = middle_frame(path, width) if path else None
        if src:
            out.append((s["session_id"] + (" ⚑" if s["session_id"] in flagged else ""), src))
    return out


def summary_cards(audit: dict) -> str:
    """The headline counts as cards."""
    sm = audit["summary"]
    cards = [("sessions", sm["sessions"]), ("episodes", sm["episodes"]), ("hours", f"{sm['hours']:.3f}"),
             ("flagged", len(sm["flagged"])), ("usable: research", sm["usable_research"]),
             ("usable: commercial", sm["usable_commercial"]), ("revoked", len(sm["revoked_sessions"]))]
    return "".join(card(k, v) for k, v in cards)


def flagged_html(audit: dict) -> str:
    if not audit["flagged"]:
        return "<p>None: every session meets the capture standard and the sync thresholds.</p>"
    return table(["session", "capture standard", "sync", "assumed values", "in store"],
                 [[f["session_id"], "; ".join(f["capture"]) or "pass", "; ".join(f["sync"]) or "ok",
                   "; ".join(f.get("assumed") or []) or "none",
                   "yes" if f["in_store"] else f"no — {f['excluded']}"] for f in audit["flagged"]])


def capture_html(audit: dict) -> str:
    """The capture standard (one line) and every session's verdict against it."""
    spec = audit["spec"]
    parts = [f"<p class='small'>fps {spec['fps']['nominal']} ± {spec['fps']['tolerance']} · resolution ≥ "
             f"{spec['resolution']['min_width']}×{spec['resolution']['min_height']} · FOV h {spec['fov_deg']['h']} v "
             f"{spec['fov_deg']['v']} · cameras {', '.join(spec['camera_models'])} · brightness "
             f"[{spec['brightness']['min']}, {spec['brightness']['max']}] · dropped ≤ {spec['max_dropped_frame_rate']:.1%} · "
             f"sharpness ≥ {spec['min_sharpness']}</p>"]
    rows = []
    for c in audit["capture"]:
        ch = c["checks"]
        val = lambda k: ch.get(k, {}).get("value")  # noqa: E731
        rows.append([c["session_id"], mark(c["verdict"] == "pass"), val("fps_declared"), val("fps_measured"),
                     "×".join(map(str, val("resolution") or [])), val("brightness"), val("sharpness"),
                     None if val("dropped_frames") is None else f"{val('dropped_frames'):.2%}",
                     esc("; ".join(c["reasons"])), "; ".join(c.get("notes") or [])])
    parts.append(table(["session", "verdict", "fps", "measured fps", "resolution", "brightness", "sharpness",
                        "dropped", "reasons", "assumed values"], rows, raw_cols={1, 8}))
    return "\n".join(parts)


def sync_html(audit: dict) -> str:
    """Residual and drift per session against the spec's thresholds; the sessions over them."""
    parts = []
    r, d = audit["sync"]["residual_ms"], audit["sync"]["abs_drift_ppm"]
    if r.get("n"):
        parts.append(f"<p>worst-clock residual: median {r['median']:.3f} ms, p95 {r['p95']:.3f} ms, max {r['max']:.3f} ms · "
                     f"|drift|: median {d.get('median', 0):.0f} ppm, max {d.get('max', 0):.0f} ppm</p>")
    for title, src in _sync_hist(audit):
        parts.append(figure(src, title))
    over = audit["sync"]["over_threshold"]
    parts.append(f"<p>{len(over)} session(s) over threshold.</p>")
    if over:
        parts.append(table(["session", "sync verdict", "|drift| ppm", "residual ms", "reasons"],
                           [[s["session_id"], s["sync_verdict"], None if s["max_abs_drift_ppm"] is None else f"{s['max_abs_drift_ppm']:.0f}",
                             None if s["max_residual_ms"] is None else f"{s['max_residual_ms']:.3f}", "; ".join(s["reasons"])] for s in over]))
    return "\n".join(parts)


COVERAGE_MAPS = (("place_x_task", "place × task"), ("person_x_task", "person × task"), ("objects_x_task", "object × task"))


def coverage_html(audit: dict, fps: float, maps: tuple[tuple[str, str], ...] = COVERAGE_MAPS, motion: bool = True) -> str:
    """Counts and entropy per factor, heatmaps of the chosen crossings, and (``motion``) action-space coverage."""
    cov = audit["coverage"]
    parts = [f"<p>{cov['episodes']} episodes, {cov['frames']} frames, {cov['hours'] * 60:.1f} minutes; "
             f"{len(cov['combinations'])} distinct place × person × task × objects combinations.</p>",
             table(["factor", "categories", "entropy (bits)", "normalised entropy", "balance min/max"],
                   [[k, v["categories"], v["entropy_bits"], v["normalised"], v["balance_min_over_max"]] for k, v in cov["by"].items()])]
    for key, title in maps:
        cells = cov.get(key)
        if not cells:
            continue
        if not cells.get("rows") or not cells.get("cols"):  # e.g. sessions with no objects: nothing to cross
            parts.append(f"<p class='small'><b>{esc(title)}</b> — no cells: "
                         f"{esc(cells.get('why') or 'one of the two factors has no values in this store')}</p>")
            continue
        parts.append(figure(heatmap(cells, title, fps), title))
        parts.append(f"<p class='small'><b>{title}</b> — empty cells ({len(cells['empty'])}): "
                     f"{esc(', '.join(cells['empty']) or 'none')}<br>thin cells ({len(cells['thin'])}): "
                     f"{esc(', '.join(cells['thin']) or 'none')}</p>")
    if motion:
        for title, src in _motion_hist(audit):
            parts.append(figure(src, title))
        mrows = [[t, f"{m['head_speed'].get('median', 0):.3f}", f"{m['head_speed'].get('p95', 0):.3f}",
                  f"{m['head_turn'].get('median', 0):.3f}", f"{m['wrist_speed'].get('median', 0):.3f}", f"{m['wrist_speed'].get('p95', 0):.3f}"]
                 for t, m in sorted(cov["motion"].items())]
        parts.append(table(["task", "head m/s median", "head m/s p95", "head rad/s median", "wrist m/s median", "wrist m/s p95"], mrows))
    parts.append(behaviour_html(cov.get("behaviour") or {}))
    return "\n".join(parts)


def behaviour_html(b: dict) -> str:
    """Action coverage, the task / play / failure mix and the shortcut check (``audit.behaviour``)."""
    if not b:
        return ""
    parts = ["<h3>What people did: action coverage, behaviour mix, shortcuts</h3>"]
    c = b["control"]
    v = c["wrist_velocity"]
    rows = [[f"{side} wrist velocity ({v['bins_per_axis']}³ cells over ±{v['box_m_per_frame'] * 30:.2f} m/s)",
             f"{v[side]['covered']}/{v[side]['cells']}", f"{v[side]['share']:.0%}"] for side in ("left", "right")]
    rows += [[f"{side} grip", f"{c['grip'][side]['covered']}/{c['grip'][side]['cells']}", f"{c['grip'][side]['share']:.0%}"]
             for side in ("left", "right")]
    parts.append(table([f"control (a cell is covered with ≥ {v['min_frames']} frames)", "cells covered", "share"], rows))
    if "hand_to_object" in b:
        h = b["hand_to_object"]
        parts.append(table(["nearest hand to an object", *h["share_of_frames"]],
                           [[h["from"], *[f"{x:.0%}" for x in h["share_of_frames"].values()]]]))
    m = b.get("mix", {})
    if m.get("share"):
        parts.append(table(["behaviour", "task", "play", "failure (withdrawn unfinished)", "other (arriving, getting ready)"],
                           [["share of frames", *[f"{m['share'][k]:.0%}" for k in ("task", "play", "failure", "other")]]]))
    else:
        parts.append(f"<p class='small'>No episode recorded its behaviour mix ({m.get('episodes_without_record', 0)} episodes): "
                     "the share of task, play and failure is unknown.</p>")
    sc = b.get("shortcut")
    if sc:
        rho = ", ".join(f"{k.replace('_', ' ')} ρ {v:+.2f}" for k, v in sc["rho_with_reward"].items() if v is not None)
        verdict = "<b>shortcut flagged</b>: " if sc["flagged"] else ""
        parts.append(f"<p>{verdict}{esc(sc['why'])} ({esc(rho)}; flag at |ρ| ≥ {sc['threshold']}).</p>")
    return "\n".join(parts)


def rights_table(audit: dict) -> str:
    """Every session's consent record and what it clears it for."""
    return table(["session", "subject", "scopes", "expires", "revoked", "research", "commercial", "why not (commercial)"],
                 [[x["session_id"], x["subject_id"] or "— (no consent.json)", ", ".join(x["scopes"]), x["expires_at"], x["revoked_at"],
                   mark(x["usable_research"], "usable", "no"), mark(x["usable_commercial"], "usable", "no"),
                   esc("; ".join(x["usable_commercial_reasons"]))] for x in audit["rights"]], raw_cols={5, 6, 7})


def rights_html(audit: dict) -> str:
    """The rights table, the exports made, and where revoked consent was used."""
    parts = [rights_table(audit), "<h3>Exports</h3>"]
    parts.append(table(["out", "use", "at", "episodes", "subjects"],
                       [[e["out"], e["use"], e["at"], e["episodes"], ", ".join(e.get("subjects", []))] for e in audit["exports"]])
                 if audit["exports"] else "<p>No exports recorded.</p>")
    parts.append("<h3>Revoked consent and where it was used</h3>")
    if audit["revoked_used_by"]:
        parts.append(table(["subject", "sessions", "exports that used it", "checkpoints that used it"],
                           [[u["subject_id"], ", ".join(u["sessions"]),
                             "; ".join(f"{e['out']} ({e['use']}, {e['at']})" for e in u["exports"]) or "none",
                             "; ".join(c["checkpoint"] for c in u["checkpoints"]) or "none"] for u in audit["revoked_used_by"]]))
    else:
        parts.append("<p>No revoked consent.</p>")
    return "\n".join(parts)


def render(audit: dict, sessions: list[dict], store_root: Path, fps: float) -> str:
    """The HTML text of the report."""
    flagged = {f["session_id"] for f in audit["flagged"]}
    body = ["<h1>egoworld data audit</h1>",
            f"<p class='small'>store {esc(audit['store'])} · spec {esc(audit['spec'].get('name', ''))} "
            f"({esc(audit['spec_file'])}) · as of {audit['as_of']} · generated {audit['generated_at']}</p>",
            summary_cards(audit),
            "<h2>Flagged sessions</h2>", flagged_html(audit),
            "<h2>Capture standard</h2>", capture_html(audit),
            "<h2>Sync</h2>", sync_html(audit),
            "<h2>Coverage</h2>", coverage_html(audit, fps),
            "<h2>Rights</h2>", rights_html(audit),
            "<h2>Sample frames</h2><div class='frames'>"]
    for label, src in sample_frames(store_root, sessions, flagged):
        body.append(figure(src, label))
    body.append("</div><p class='small'>⚑ = flagged. Self-contained: every image is inline.</p>")
    return page("egoworld audit", body)


def write_report(path: Path, audit: dict, sessions: list[dict], store_root: Path, fps: float) -> None:
    write_page(path, render(audit, sessions, store_root, fps))
