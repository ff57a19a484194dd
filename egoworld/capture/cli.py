"""``egoworld capture sim --out DATA …``: record sessions with the MuJoCo rig (real recordings: importers/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from egoworld.cluster import RAY_HELP

console = Console()


def sim_command(
    out: Path = typer.Option(..., "--out", help="Folder to write sessions into."),
    tasks: str = typer.Option("all", help="Comma-separated tasks, or 'all' (push, open_drawer, pick_place, stack)."),
    places: int = typer.Option(8, min=1, help="Number of places (room layouts) to spread sessions over."),
    people: int = typer.Option(6, min=1, help="Number of people to spread sessions over."),
    sessions: int = typer.Option(8, min=1, help="Number of sessions."),
    seconds: float = typer.Option(20.0, min=1.0, help="Length of each session."),
    seed: int = typer.Option(0, help="Same seed → identical files."),
    fps: float = typer.Option(30.0, min=1.0, help="Camera frame rate."),
    width: int = typer.Option(256, min=16), height: int = typer.Option(256, min=16),
    fov: float = typer.Option(90.0, min=20.0, max=150.0, help="Vertical field of view (degrees)."),
    offset_ms: Optional[float] = typer.Option(None, help="Clock offset of every motion clock (ms); default random ±500."),
    drift_ppm: Optional[float] = typer.Option(None, help="Clock drift of every motion clock (ppm); default random ±1000."),
    jitter_ms: float = typer.Option(0.3, min=0.0, help="Timestamp jitter (std, ms)."),
    drop_rate: float = typer.Option(0.004, min=0.0, max=0.5, help="Fraction of motion samples dropped."),
    frame_drop_rate: float = typer.Option(0.002, min=0.0, max=0.5, help="Fraction of video frames dropped."),
    consent: str = typer.Option("full", help="full | research | expired | revoked | none | mixed."),
    light_scale: float = typer.Option(1.0, min=0.0, max=2.0, help="Scale every light (<1: a dark capture)."),
    mix: str = typer.Option("task", help="What people do at the table: 'task' (the task, then free play), 'play' (task "
                            "attempts mixed with reaching, pokes, random knots, withdrawals, idle hands) or weights "
                            "such as task=0.3,knots=0.7."),
    start: str = typer.Option("walk", help="walk: each session starts across the room and walks up; table: it starts at "
                              "the table, hands ready (the workspace only — no walking frames to confound hand motion with)."),
    workers: int = typer.Option(1, min=1, help="Processes to use."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
) -> None:
    """Simulate first-person sessions: scripted people doing tasks in randomised rooms."""
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.catalog import TASKS
    from egoworld.capture.sim.person import parse_mix
    from egoworld.capture.sim.record import CONSENT_KINDS, plan_sessions

    task_list = list(TASKS) if tasks == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    bad = [t for t in task_list if t not in TASKS]
    if bad:
        raise typer.BadParameter(f"unknown task(s) {bad}; known: {', '.join(TASKS)}", param_hint="--tasks")
    if consent not in CONSENT_KINDS + ("mixed",):
        raise typer.BadParameter(f"{consent!r}; use one of {', '.join(CONSENT_KINDS + ('mixed',))}", param_hint="--consent")
    try:
        parse_mix(mix)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--mix") from None
    if start not in ("walk", "table"):
        raise typer.BadParameter(f"{start!r}; use walk or table", param_hint="--start")
    configs = plan_sessions(sessions, places, people, task_list, seed, mix=mix, start=start, seconds=seconds, fps=fps, width=width, height=height,
                            fov_deg=fov, offset_ms=offset_ms, drift_ppm=drift_ppm, jitter_ms=jitter_ms, drop_rate=drop_rate,
                            frame_drop_rate=frame_drop_rate, consent=consent, light_scale=light_scale)
    if ray is not None:
        done, failed = _capture_on_ray(out, configs, ray)
    else:
        done, failed = capture_many(out, configs, workers)
    console.print(f"wrote {len(done)} sessions to {out}")
    for sid, err in failed:
        console.print(f"[red]failed[/red] {sid}: {err}")
    if failed:
        raise typer.Exit(1)


def _capture_on_ray(out: Path, configs: list, address: str) -> tuple[list[Path], list[tuple[str, str]]]:
    """One Ray task per session (each writes its own folder under OUT atomically)."""
    from egoworld.capture.sim.record import capture_session
    from egoworld.cluster import ClusterError, map_tasks

    out.mkdir(parents=True, exist_ok=True)
    try:
        outcomes = map_tasks(capture_session, [(out, c) for c in configs], [c.session_id for c in configs], address)
    except ClusterError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None
    return sorted(o.value for o in outcomes if o.ok), [(o.label, f"{o.kind}: {o.error}") for o in outcomes if not o.ok]


def register(app: typer.Typer) -> None:
    """Add the ``capture`` command group (``sim``) to the egoworld CLI."""
    capture_app = typer.Typer(no_args_is_help=True,
                              help="Record sessions with the MuJoCo egocentric rig (real recordings: egoworld import).")
    capture_app.command("sim")(sim_command)
    app.add_typer(capture_app, name="capture")
