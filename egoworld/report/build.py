"""Assemble the demo's one self-contained ``report.html`` (data, sync, model, planning) and ``report.json``.

Everything is read back from the demo folder — ``summary.json``, ``audit.json``, the episode
store, ``aligned/*/sync.json``, each session's ``truth/``, ``runs/*/metrics.csv``,
``eval/eval.json`` and its videos — so the report can be rebuilt without rerunning anything
(``python -m egoworld.report DIR``). ``report.json`` holds every number the page shows, without
timings or paths, so two runs with the same seed can be compared number for number.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from egoworld._atomic import write_json
from egoworld.html import cards, esc, measured_on, page, table, write_page
from egoworld.report.data import data_section
from egoworld.report.model import headline, model_section
from egoworld.report.planning import fmt_rate, planning_section
from egoworld.report.sync import sync_section


def split_episodes(store: Any) -> dict[str, list[str]]:
    """Session ids of each split (train / val / heldout) as the loader assigns them."""
    from egoworld.dataset.splits import Split, assign

    rows = store.episode_rows()
    parts = assign(rows, Split.from_json("all", store.splits or {}))
    return {k: [rows[i]["session_id"] for i in v] for k, v in parts.items()}


def stage_rows(summary: dict, ev: dict) -> list[list[str]]:
    """The terminal's summary table, as rows of (stage, measured, on)."""
    rows = []
    succ = summary.get("scripted_success") or {}
    flat = [x for v in succ.values() for x in v]
    if flat:
        rows.append(["capture", f"scripted person succeeded in {sum(flat)}/{len(flat)} sessions", "true sim state (truth/task.json)"])
    s = summary.get("sync") or {}
    if s.get("frames"):
        rows.append(["sync", f"timing error median {s['median_abs_ms']:.2f} ms, p95 {s['p95_abs_ms']:.2f} ms "
                     f"({', '.join(f'{k} {v}' for k, v in s['verdicts'].items())})",
                     f"{s['frames']} frame×stream samples vs truth/clocks.json"])
    a = summary.get("audit") or {}
    if a:
        rows.append(["audit", f"{len(a.get('flagged', []))} flagged; usable for research {a['usable_research']}, "
                     f"commercial {a['usable_commercial']}", f"{a['episodes']} episodes in the store"])
    for split, res in (ev.get("splits") or {}).items():
        if not res:
            continue
        cells = [f"h{h}: {res['model']['psnr'][h - 1]:.1f} / {res['copy_last']['psnr'][h - 1]:.1f} / "
                 f"{res.get('action_blind', {}).get('psnr', [float('nan')] * h)[h - 1]:.1f}"
                 for h in (1, 5, 10) if h <= len(res["model"]["psnr"])]
        rows.append([f"world model ({split})", "PSNR dB model / copy-last / action-blind — " + "; ".join(cells),
                     f"{res['model']['n_clips']} {split} clips; {summary.get('plan', {}).get('train_steps')} training steps"])
    plan_rows = (summary.get("planning") or {}).get("table") or []
    overall = [r for r in plan_rows if r.get("task") == "all"] or plan_rows
    for r in overall:
        rows.append([f"planning ({r.get('split')})", f"{r.get('method')}: success {fmt_rate(r.get('success'))}, "
                     f"progress {fmt_rate(r.get('progress'))}", f"{r.get('episodes')} episodes in the simulator"
                     + ("" if r.get("task") == "all" else f" ({r.get('task')})")])
    return rows


def render_report(root: Path, summary: dict, planning: dict | None = None) -> tuple[str, dict]:
    """The HTML text of the combined report and the numbers it shows."""
    from egoworld.dataset.store import open_store

    root = Path(root)
    planning = planning if planning is not None else summary.get("planning")
    summary = dict(summary, planning=planning)
    audit = json.loads((root / "audit.json").read_text())
    store = open_store(root / "episodes")
    ev_path = root / "eval" / "eval.json"
    ev = json.loads(ev_path.read_text()) if ev_path.exists() else {"splits": {}, "horizons": [1], "context": 0}
    splits = split_episodes(store)
    plan = summary.get("plan", {})
    scripted = summary.get("scripted_success")

    data_html, data_nums = data_section(store.root, store.sessions, audit, store.fps, scripted)
    sync_html, sync_nums = sync_section(root, summary.get("sessions") or [s["session_id"] for s in store.sessions], summary.get("sync"))
    cf_path = root / "eval" / "counterfactual.json"
    cf_about = json.loads(cf_path.read_text()) if cf_path.exists() else None
    model_html, model_nums = model_section(root, summary, ev, splits, cf_about)
    plan_html, plan_nums = planning_section(planning)
    head_items, head_nums = headline(ev)

    timings = summary.get("timings_s") or {}
    total = sum(timings.values())
    title = f"egoworld demo — seed {summary.get('seed')}{' (quick)' if summary.get('quick') else ''}"
    command = f"egoworld demo{' --quick' if summary.get('quick') else ''} --seed {summary.get('seed')}"
    parts = [f"<h1>{esc(title)}</h1>",
             "<nav><a href='#summary'>Summary</a><a href='#data'>Data</a><a href='#sync'>Sync</a>"
             "<a href='#model'>World model</a><a href='#planning'>Planning</a></nav>",
             f"<p class='small'>{plan.get('sessions')} simulated sessions × {plan.get('seconds')} s at {plan.get('size')}² "
             f"({plan.get('places')} places, {plan.get('people')} people) · command <code>{esc(command)}</code> · "
             f"ran in {total:.0f} s ({esc(', '.join(f'{k[:-2]} {v:.0f} s' for k, v in timings.items()))}) · "
             f"generated {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
             "<section><h2 id='summary'>Summary</h2>", cards(head_items) if head_items else "",
             table(["stage", "measured", "on"], stage_rows(summary, ev)),
             measured_on("this run; the same command with the same seed gives the same numbers (report.json)"),
             "</section>",
             f"<section>{data_html}</section>", f"<section>{sync_html}</section>",
             f"<section>{model_html}</section>", f"<section>{plan_html}</section>",
             "<p class='small'>Self-contained: every figure and video is inside this file (base64 PNG and H.264).</p>"]
    numbers = {"seed": summary.get("seed"), "quick": summary.get("quick"), "plan": plan, "headline": head_nums,
               "data": data_nums, "sync": sync_nums, "model": model_nums, "planning": plan_nums}
    return page(title, parts), numbers


def write_demo_report(root: str | Path, summary: dict | None = None, planning: dict | None = None) -> Path:
    """Write ``root/report.html`` and ``root/report.json``; returns the HTML path."""
    root = Path(root)
    summary = summary if summary is not None else json.loads((root / "summary.json").read_text())
    text, numbers = render_report(root, summary, planning)
    path = write_page(root / "report.html", text)
    write_json(root / "report.json", numbers)
    return path
