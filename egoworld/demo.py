"""`egoworld demo`: the pipeline end to end on a small simulated set, and one report to look at.

capture (scripted people, drifting clocks) → sync (offset + drift per clock) → episodes (LeRobot
v3 store) → audit (capture standard, sync, coverage, rights) → train a tiny world model and its
action-blind twin (fixed step counts, so the same seed gives the same numbers) → evaluate
against copy-last and action-blind, with a counterfactual replayed in the simulator → planning
(when a planner is wired in: ``planning`` below) → one self-contained ``report.html`` (and
``report.json``, every number it shows) built by ``egoworld.report``.
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
    plan_episodes: int  # closed-loop episodes per method × held-in/held-out place (task: PLAN_TASK)


FULL = DemoPlan(sessions=8, seconds=12.0, size=128, places=4, people=4, train_steps=120, plan_episodes=3)
QUICK = DemoPlan(sessions=4, seconds=8.0, size=96, places=3, people=2, train_steps=12, plan_episodes=1)


# The planning section: the drawer (reach the handle, pull it to where the tracker says it goes), planned by
# the goal-conditioned cost on the model's imagined tracked points (docs/planning.md).
PLAN_TASK = "open_drawer"
PLAN_OBJECTIVE = dict(track=1.0, progress=0.0)


def _train(data: str, out: str, steps: int, seed: int, blind: bool) -> dict:
    """One training run in its own process (the model and its action-blind twin train side by side)."""
    from egoworld.model.config import preset
    from egoworld.train.loop import train

    cfg = preset("tiny", steps=steps, seed=seed, action_blind=True if blind else None, ckpt_every=max(steps // 2, 1),
                 val_every=max(steps // 2, 1), track_points=2)
    cfg.extra = dict(cfg.extra, data=data)
    return train(cfg, data, out, progress=False, echo=lambda s: None)


def run_demo(out: Path, quick: bool = False, seed: int = 0, workers: int = 2, console: Console | None = None,
             planning: dict | None = None) -> dict:
    """Run every built stage into ``out``; returns (and writes) the summary; writes ``out/report.html``.

    ``planning``: closed-loop planning results for the report's planning section
    (``{"table": [{"task", "method", "split", "success", "progress", "episodes"}], "video": mp4 path or None,
    "measured_on": str}``, see ``egoworld.report.planning``); None: the section says "not run".
    """
    import egoworld.capture.sim  # noqa: F401  (off-screen GL before mujoco loads)
    from egoworld.audit.audit import run_audit
    from egoworld.audit.report import write_report
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.catalog import TASKS
    from egoworld.capture.sim.record import plan_sessions
    from egoworld.dataset.build import build_store
    from egoworld.dataset.store import open_store
    from egoworld.report import write_demo_report
    from egoworld.sync.batch import report_table, run_batch
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
    write_report(out / "audit.html", audit, store.sessions, store.root, store.fps)
    audit.pop("_motion_samples", None)
    write_json(out / "audit.json", audit)
    console.print(f"{built.episodes} episodes, {built.frames} frames; audit flagged {len(audit['flagged'])} sessions; audit report → {out / 'audit.html'}")
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

    ev = evaluate(runs["model"], data, blind=runs["action_blind"], max_clips=8 if quick else 16,
                  probe_clips=32 if quick else 128, videos=1 if quick else 2, out=out / "eval",
                  echo=lambda s: None)
    from egoworld.evaluate.counterfactual import write_counterfactual_video

    cf = write_counterfactual_video(runs["model"], data, out / "eval" / "counterfactual.mp4", blind=runs["action_blind"])
    if cf is not None:
        write_json(out / "eval" / "counterfactual.json", cf)
    lap("eval_s")

    if planning is None:
        console.rule(f"6 · plan: CEM with the world model in the simulator ({PLAN_TASK}), against random, sim-oracle and the scripted person")
        from egoworld.evaluate.closed_loop import closed_loop_eval
        from egoworld.report.planning import from_closed_loop

        # --quick (CI, ≤ 90 s) plans in the held-in place only and leaves out the costly sim-oracle;
        # the full demo plays every actor in both places
        cl = closed_loop_eval(runs["model"], quick=True, episodes=plan.plan_episodes, seed=seed, out=out / "plan",
                              tasks=(PLAN_TASK,), places=("held_in",) if quick else None,
                              methods=("random", "model", "scripted") if quick else None,
                              objective=PLAN_OBJECTIVE, progress=False, echo=lambda s: None)
        planning = from_closed_loop(cl, out / "plan")
        lap("plan_s")

    summary = {"seed": seed, "quick": quick, "plan": asdict(plan), "sessions": [p.name for p in sessions],
               "scripted_success": {t: [s["success"] for s in scripted if s["task"] == t] for t in TASKS},
               "sync": sync, "audit": audit["summary"], "train": {k: {kk: v.get(kk) for kk in ("steps", "best_val")} for k, v in trained.items()},
               "eval": {k: ev.get(k) for k in ("splits", "counterfactual") if k in ev}, "planning": planning, "timings_s": timings,
               "reports": {"demo": str(out / "report.html"), "audit": str(out / "audit.html"), "eval": str(out / "eval" / "eval.html")}}
    write_json(out / "summary.json", summary)

    console.rule("7 · report: data, sync, world model, planning — one self-contained page")
    report = write_demo_report(out, summary)
    lap("report_s")
    summary["timings_s"] = timings
    write_json(out / "summary.json", summary)
    console.print(summary_table(summary))
    console.print(f"report: [bold]{report}[/bold]  ·  numbers: {out / 'report.json'}  ·  summary: {out / 'summary.json'}")
    return summary


def summary_table(summary: dict) -> Table:
    """The terminal's short table: what each stage measured, and on what."""
    from egoworld.report.build import stage_rows

    seconds = sum(summary["timings_s"].values())
    table = Table(title=f"egoworld demo (seed {summary['seed']}{', quick' if summary['quick'] else ''}) — "
                        f"{len(summary['sessions'])} simulated sessions, {seconds:.0f} s")
    for c in ("stage", "measured", "on"):
        table.add_column(c)
    for row in stage_rows(summary, summary.get("eval") or {}):
        table.add_row(*row)
    return table
