"""Sync a folder of sessions: a progress bar, local processes or Ray tasks, and the result tables.

``sync_folder`` is what ``egoworld sync DATA`` runs (cli.py). The estimate never sees ``truth/``;
when the sessions have it (simulated data), the aggregate error against it is computed afterwards
by ``egoworld.sync.evaluate`` and printed separately.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from egoworld._atomic import write_json
from egoworld.session import find_sessions
from egoworld.sync.estimate import FAILED
from egoworld.sync.evaluate import MEDIAN_MS, P95_MS, aggregate, evaluate_session
from egoworld.sync.pipeline import sync_session

_STYLE = {"ok": "green", "suspect": "yellow", "failed": "red"}


def _one_core() -> None:
    """Worker initialiser: one thread per process, so N workers use N cores and no more."""
    import cv2

    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _safe_sync(path: Path, out: Path) -> dict:
    """sync_session never fails on bad data; this also survives a bug, so the batch goes on."""
    try:
        return sync_session(path, out)
    except Exception as e:  # noqa: BLE001 — report and continue: one session must not stop a batch
        report = {"session_id": path.name, "session_path": str(path), "verdict": FAILED,
                  "reason": f"internal error: {type(e).__name__}: {e}", "clocks": {}, "streams": {}}
        try:
            write_json(out / path.name / "sync.json", report)
        except OSError:
            pass
        return report


def run_batch(sessions: list[Path], out: Path, workers: int = 1, console: Console | None = None) -> list[dict]:
    """Sync sessions with a progress bar, in ``workers`` processes; reports in input order."""
    console = console or Console()
    reports: dict[Path, dict] = {}
    columns = (TextColumn("sync"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=len(sessions))
        if workers <= 1:
            _one_core()
            for p in sessions:
                reports[p] = _safe_sync(p, out)
                progress.update(task, advance=1, description=f"{reports[p]['session_id']}: {reports[p]['verdict']}")
        else:
            # spawn, not fork: a forked child inherits OpenCV's / FFmpeg's thread pools half-locked.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_one_core) as pool:
                futures = {pool.submit(_safe_sync, p, out): p for p in sessions}
                for f in as_completed(futures):
                    p = futures[f]
                    reports[p] = f.result()
                    progress.update(task, advance=1, description=f"{reports[p]['session_id']}: {reports[p]['verdict']}")
    return [reports[p] for p in sessions]


def run_batch_ray(sessions: list[Path], out: Path, address: str | None, console: Console | None = None) -> list[dict]:
    """Sync sessions as Ray tasks (one per session; each writes its own ``out/<id>/`` atomically);
    reports in input order. A task lost with its worker is reported as a failed session."""
    from egoworld.cluster import map_tasks

    console = console or Console()
    outcomes = map_tasks(_safe_sync, [(p, out) for p in sessions], [p.name for p in sessions], address,
                         on_done=lambda o: console.print(f"  {o.label}: {o.value['verdict'] if o.ok else o.error}"))
    reports = []
    for p, o in zip(sessions, outcomes):
        if o.ok:
            reports.append(o.value)
            continue
        report = {"session_id": p.name, "session_path": str(p), "verdict": FAILED, "reason": f"internal error: {o.error}",
                  "clocks": {}, "streams": {}}
        write_json(out / p.name / "sync.json", report)
        reports.append(report)
    return reports


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def report_table(reports: list[dict]) -> Table:
    """One row per (session, motion clock): offset, drift, residual, uncertainty, verdict, reason."""
    t = Table(title="egoworld sync", show_lines=False)
    for col, just in (("session", "left"), ("clock", "left"), ("offset ms", "right"), ("drift ppm", "right"),
                      ("resid ms", "right"), ("±1σ ms", "right"), ("conf", "right"), ("verdict", "left"),
                      ("reason", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for r in reports:
        clocks = r.get("clocks") or {}
        if not clocks:
            t.add_row(r["session_id"], "—", "—", "—", "—", "—", "—", f"[red]{r['verdict']}[/]", r.get("reason", ""))
            continue
        for i, (name, c) in enumerate(clocks.items()):
            v = c["verdict"]
            t.add_row(r["session_id"] if i == 0 else "", name, _fmt(c["offset_ms"], "+.2f"), _fmt(c["drift_ppm"], "+.1f"),
                      _fmt(c["residual_ms"], ".3f"), _fmt(c["sigma_ms"], ".3f"), _fmt(c["confidence"], ".2f"),
                      f"[{_STYLE[v]}]{v}[/]", "" if v == "ok" else c["reason"])
    return t


def evaluation_table(agg: dict) -> Table:
    t = Table(title="timing error vs truth/ (evaluation only: the estimate never reads it)")
    for col in ("sessions", "verdicts", "frames", "median |err| ms", "p95 |err| ms", "max |err| ms", "issue"):
        t.add_column(col)
    ok = "[green]meets[/]" if agg["meets_issue"] else "[red]misses[/]"
    t.add_row(str(agg["sessions"]), " ".join(f"{k}:{v}" for k, v in agg["verdicts"].items()), str(agg["frames"]),
              _fmt(agg["median_abs_ms"], ".3f"), _fmt(agg["p95_abs_ms"], ".3f"), _fmt(agg["max_abs_ms"], ".3f"),
              f"{ok} (≤{MEDIAN_MS} / ≤{P95_MS} ms)")
    return t


def sync_folder(data: Path, out: Path | None = None, workers: int = 1, ray: str | None = None) -> int:
    """Sync every session under ``data`` into ``out`` (default DATA/aligned) and print the table.

    ``ray`` (an address, or "" for Ray's default): one Ray task per session instead of local processes.

    Exit code: 0 when every session synced (ok or suspect), 1 when any failed, 2 when there was
    nothing to sync.
    """
    console = Console()
    data = Path(data)
    sessions = find_sessions(data)
    if not sessions:
        console.print(f"[red]{data}: no sessions found (a session is a folder holding session.json)[/]")
        return 2
    out = Path(out) if out is not None else data / "aligned"
    if ray is not None:
        from egoworld.cluster import ClusterError

        try:
            reports = run_batch_ray(sessions, out, ray, console)
        except ClusterError as e:
            console.print(f"[red]error:[/] {escape(str(e))}")
            return 2
    else:
        reports = run_batch(sessions, out, max(1, int(workers)), console)
    console.print(report_table(reports))
    evals = [evaluate_session(p, r) for p, r in zip(sessions, reports) if r.get("clocks") is not None]
    summary: dict = {"sessions": [{k: r.get(k) for k in ("session_id", "verdict", "reason")} for r in reports]}
    if any(e is not None for e in evals):
        agg = aggregate(evals)
        summary["truth"] = agg
        console.print(evaluation_table(agg))
    write_json(out / "summary.json", summary)
    n_failed = sum(r["verdict"] == FAILED for r in reports)
    console.print(f"{len(reports)} sessions → {out}  ({n_failed} failed)")
    return 1 if n_failed else 0
