"""The report's planning section, fed by a plain dict so that any planner's results fit.

``planning`` = ``{"table": [{"task", "method", "split", "success", "progress", "episodes"}, ...],
"video": path to an mp4 (or None), "measured_on": what the table was measured on}``; success and
progress are rates in [0, 1] (or counts, shown as they are). Absent or empty: the section says
"not run".
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from egoworld.html import esc, measured_on, table, video

COLUMNS = ("task", "method", "split", "success", "progress", "episodes")
METHOD_NAMES = {"model": "planner in the world model", "oracle": "planner in the simulator (oracle)",
                "random": "random controls", "scripted": "scripted person"}


def from_closed_loop(result: dict, out_dir: str | Path | None = None) -> dict:
    """``egoworld.evaluate.closed_loop.closed_loop_eval``'s result → the dict this section takes.

    Rows per task × places × actor (and "all"), success rate and final progress as measured in
    the simulator; the first recorded planned episode as the video (``out_dir``: where its
    ``results.json`` and ``episode_model.mp4`` are).
    """
    rows = []
    by_task = list((result.get("table") or {}).items()) + [("all", result.get("overall") or {})]
    for task, by_split in by_task:
        for split, cells in by_split.items():
            for method, c in cells.items():
                if c.get("n"):
                    rows.append({"task": task, "method": METHOD_NAMES.get(method, method), "split": split.replace("_", "-"),
                                 "success": c.get("success"), "progress": c.get("progress"), "episodes": c["n"],
                                 "progress_gain": c.get("progress_gain")})
    cfg = result.get("config") or {}
    on = (f"{cfg.get('episodes')} episodes per task × places ({', '.join(cfg.get('splits', []))}), the same starts "
          f"for every actor, {cfg.get('max_steps')} frames each, in the simulator; success and progress from its true state")
    ratio = result.get("model_over_oracle") or {}
    if ratio:
        on += "; model / oracle: " + ", ".join(f"{s} success {r.get('success')}, progress gain {r.get('progress_gain')}"
                                               for s, r in ratio.items())
    video, caption = None, None
    vids = result.get("videos") or []
    if vids and out_dir is not None:
        v = vids[0]
        video = str(Path(out_dir) / v["path"])
        caption = (f"a planned episode in the simulator, as the head camera saw it: {v['task']}, {v['split']} place, "
                   f"{'success' if v['success'] else 'no success'}, final progress {v['progress']:.2f}")
    agreement = [{"task": t, "split": sp.replace("_", "-"), "spearman": a.get("spearman"), "per_start": a.get("per_start"),
                  "candidates": a.get("candidates")} for t, by in (result.get("cost_agreement") or {}).items()
                 for sp, a in by.items()]
    return {"table": rows, "video": video, "video_caption": caption, "measured_on": on, "cost_agreement": agreement}


def fmt_rate(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and 0.0 <= x <= 1.0:
        return f"{x:.0%}"
    return str(x)


def _signed(x: Any) -> str:
    return "—" if x is None else f"{x:+.2f}"


def planning_section(planning: dict | None) -> tuple[str, dict]:
    """HTML of the planning section and its numbers (for report.json)."""
    parts = ["<h2 id='planning'>Planning</h2>",
             "<p>A planner searches action sequences inside the world model and executes them in the simulator; "
             "success is judged by the simulator's true state.</p>"]
    rows = (planning or {}).get("table") or []
    if not rows:
        why = (planning or {}).get("why", "planning has not run in this demo")
        parts.append(f"<p class='notrun'>not run: {esc(why)}.</p>")
        return "\n".join(parts), {"run": False}
    gain = any("progress_gain" in r for r in rows)
    head = [*COLUMNS[:5], *(["progress gain"] if gain else []), COLUMNS[5]]
    parts.append(table(head, [[r.get("task"), r.get("method"), r.get("split"), fmt_rate(r.get("success")), fmt_rate(r.get("progress")),
                               *([_signed(r.get("progress_gain"))] if gain else []), r.get("episodes")] for r in rows]))
    parts.append(measured_on(planning.get("measured_on") or "not stated"))
    agreement = planning.get("cost_agreement") or []
    if agreement:
        parts.append("<p>Can the model rank plans at all? Before any episode is played, the model's cost and the "
                     "simulator's true cost score the same candidate plans from a cell's first starts; a planner "
                     "cannot beat chance where their rank correlation is ≤ 0.</p>")
        parts.append(table(["task", "split", "cost agreement (Spearman ρ, mean)", "per start"],
                           [[a["task"], a["split"], _signed(a["spearman"]),
                             ", ".join(f"{x:+.2f}" for x in a.get("per_start") or [])] for a in agreement]))
    v = planning.get("video")
    if v and Path(v).exists():
        parts.append(video(v, planning.get("video_caption") or "a planned episode in the simulator"))
    numbers = {"run": True, "table": [{k: r.get(k) for k in (*COLUMNS, "progress_gain") if k in r} for r in rows],
               "measured_on": planning.get("measured_on"), "cost_agreement": agreement}
    return "\n".join(parts), numbers
