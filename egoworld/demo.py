"""`egoworld demo`: the pipeline end to end on a small simulated set, as far as it is built.

capture (scripted people, drifting clocks) → sync (offset + drift per clock) → episodes (LeRobot
v3 store) → audit (capture standard, sync, coverage, rights; report.html) → train a tiny world
model and its action-blind twin (fixed step counts, so the same seed gives the same numbers) →
evaluate against copy-last and action-blind. Planning and the combined report join as they land.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from egoworld._atomic import write_json


@dataclass(frozen=True)
class DemoPlan:
    sessions: int
    seconds: float
    size: int
    places: int
    people: int
    train_steps: int


FULL = DemoPlan(sessions=8, seconds=12.0, size=128, places=4, people=4, train_steps=120)
QUICK = DemoPlan(sessions=4, seconds=8.0, size=96, places=3, people=2, train_steps=12)


def _train(data: str, out: str, steps: int, seed: int, blind: bool) -> dict:
    """One training run in its own process (the model and its action-blind twin train side by side)."""
    from egoworld.model.config import preset
    from egoworld.train.loop import train

    cfg = preset("tiny", steps=steps, seed=seed, action_blind=True if blind else None, ckpt_every=max(steps // 2, 1),
                 val_every=max(steps // 2, 1))
    cfg.extra = dict(cfg.extra, data=data)
    return train(cfg, data, out, progress=False, echo=lambda s: None)


def run_demo(out: Path, quick: bool = False, seed: int = 0, workers: int = 2, console: Console | None = None) -> dict:
    """Run every built stage into ``out``; returns (and writes) the summary."""
    import egoworld.capture.sim  # noqa: F401  (off-screen GL before mujoco loads)
    from egoworld.audit.audit import run_audit
    from egoworld.audit.report import write_report
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.catalog import TASKS
    from egoworld.capture.sim.record import plan_sessions
    from egoworld.dataset.build import build_store
    from egoworld.dataset.store import open_store
    from egoworld.sync.cli import report_table, run_batch
    from egoworld.sync.evaluate import aggregate, evaluate_session

    console = console or Console()
    plan = QUICK if quick else FULL
    out = Path(out)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        timings[name] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()

    console.rule("1 · capture: scripted people in simulated rooms, every sensor on its own clock")
    configs = plan_sessions(plan.sessions, plan.places, plan.people, list(TASKS), seed, seconds=plan.seconds,
                            width=plan.size, height=plan.size)
    sessions, failed = capture_many(out, configs, workers)
    if failed:
        raise RuntimeError(f"capture failed for {failed}")
    lap("capture_s")
    scripted = [json.loads((p / "truth" / "task.json").read_text()) for p in sessions]
    console.print(f"{len(sessions)} sessions × {plan.seconds:.0f} s at {plan.size}² → {out}")

    console.rule("2 · sync: clock offset and drift from image motion vs gyro / head tracker")
    reports = run_batch(sessions, out / "aligned", workers, console)
    console.print(report_table(reports))
    sync = aggregate([evaluate_session(p, r) for p, r in zip(sessions, reports, strict=True)])
    lap("sync_s")

    console.rule("3 · episodes + audit: LeRobot-v3 store; capture standard, sync, coverage, rights")
    built = build_store(out, out / "episodes", workers=workers)
    audit = run_audit(out / "episodes")
    store = open_store(out / "episodes")
    write_report(out / "report.html", audit, store.sessions, store.root, store.fps)
    audit.pop("_motion_samples", None)
    write_json(out / "audit.json", audit)
    console.print(f"{built.episodes} episodes, {built.frames} frames; audit flagged {len(audit['flagged'])} sessions; report → {out / 'report.html'}")
    lap("episodes_audit_s")

    console.rule(f"4 · train: tiny world model and its action-blind twin, {plan.train_steps} steps each")
    data = str(out / "episodes")
    runs = {"model": out / "runs" / "model", "action_blind": out / "runs" / "action_blind"}
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        futs = {k: pool.submit(_train, data, str(v), plan.train_steps, seed, k == "action_blind") for k, v in runs.items()}
        trained = {k: f.result() for k, f in futs.items()}
    lap("train_s")

    console.rule("5 · evaluate: open-loop error vs horizon against copy-last and action-blind")
    from egoworld.evaluate.run import evaluate

    ev = evaluate(runs["model"], data, blind=runs["action_blind"], max_clips=16, videos=2, out=out / "eval",
                  echo=lambda s: None)
    lap("eval_s")

    table = Table(title=f"egoworld demo (seed {seed}{', quick' if quick else ''}) — measured on {len(sessions)} simulated sessions")
    for c in ("stage", "measured", "on"):
        table.add_column(c)
    n_succ = sum(s["success"] for s in scripted)
    table.add_row("capture", f"scripted person succeeded in {n_succ}/{len(scripted)} sessions", "true sim state (truth/)")
    if sync["frames"]:
        table.add_row("sync", f"timing error median {sync['median_abs_ms']:.2f} ms, p95 {sync['p95_abs_ms']:.2f} ms",
                      f"{sync['frames']} frame×stream samples vs truth/clocks.json")
    table.add_row("sync verdicts", ", ".join(f"{k}: {v}" for k, v in sync["verdicts"].items()), "sync.json per session")
    table.add_row("audit", f"{len(audit['flagged'])} flagged; usable research {audit['summary']['usable_research']}, "
                  f"commercial {audit['summary']['usable_commercial']}", f"{built.episodes} episodes (report.html)")
    for split, res in ev.get("splits", {}).items():
        cells = []
        for h in (1, 5, 10):
            if h <= len(res["model"]["psnr"]):
                cells.append(f"h{h}: {res['model']['psnr'][h - 1]:.1f} / {res['copy_last']['psnr'][h - 1]:.1f} / "
                             f"{res['action_blind']['psnr'][h - 1]:.1f}")
        table.add_row(f"world model ({split})", "PSNR dB model / copy-last / action-blind — " + "; ".join(cells),
                      f"{plan.train_steps} training steps; {split} clips")
    console.print(table)
    summary = {"seed": seed, "quick": quick, "plan": asdict(plan), "sessions": [p.name for p in sessions],
               "scripted_success": {t: [s["success"] for s in scripted if s["task"] == t] for t in TASKS},
               "sync": sync, "audit": audit["summary"], "train": {k: {kk: v.get(kk) for kk in ("steps", "best_val")} for k, v in trained.items()},
               "eval": {k: ev.get(k) for k in ("splits", "counterfactual") if k in ev}, "timings_s": timings,
               "reports": {"audit": str(out / "report.html"), "eval": str(out / "eval" / "eval.html")}}
    write_json(out / "summary.json", summary)
    console.print(f"audit report: {out / 'report.html'}  ·  model report: {out / 'eval' / 'eval.html'}  ·  summary: {out / 'summary.json'}")
    return summary
