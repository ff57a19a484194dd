"""The egoworld command line: one command per arrow of the pipeline (see shared DESIGN)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from egoworld.cluster import RAY_HELP


class _Group(TyperGroup):
    """``--ray`` takes an optional ADDRESS: given bare (last, or before another option) it means Ray's default."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args = list(args)
        for i in range(len(args) - 1, -1, -1):
            if args[i] == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args.insert(i + 1, "")
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, help="egoworld: first-person capture → world model.")
capture_app = typer.Typer(no_args_is_help=True, help="Record sessions with the MuJoCo egocentric rig (real recordings: egoworld import).")
app.add_typer(capture_app, name="capture")
console = Console()


@capture_app.command("sim")
def capture_sim(
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


@app.command()
def inspect(path: Path = typer.Argument(..., help="A session folder."), as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Summarise a session: streams, rates, duration, clocks, consent (metadata only)."""
    from egoworld.inspect import summarize
    from egoworld.session import SessionError

    try:
        info = summarize(path)
    except SessionError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    console.print(f"[bold]{info['session_id']}[/bold]  ({info['source']}, {info['duration_s']:.2f} s)  {info['path']}")
    console.print(f"place {info['place']} · person {info['person']} · task {info['task']} · objects {', '.join(info['objects'])}")
    rig, v = info["rig"], info["video"]
    console.print(f"camera: {rig['camera_model']} {rig['resolution']} @ {rig['fps']} fps, FOV h {rig['fov_deg']['h']:.1f}° v {rig['fov_deg']['v']:.1f}°; "
                  f"video {v['codec']} {v['frames']} frames, measured {v['measured_fps']} fps, {v['gaps']} gaps")
    t = Table(title="streams")
    for c in ("stream", "clock", "rows", "nominal Hz", "measured Hz", "first (s)", "last (s)"):
        t.add_column(c)
    t.add_row("video", "camera", str(v["frames"]), str(rig["fps"]), str(v["measured_fps"]), "0.000", f"{v['span_s']:.3f}")
    for s in info["streams"]:
        t.add_row(s["name"], s["clock"], str(s["rows"]), str(s["nominal_hz"]), str(s["measured_hz"]), f"{s['first_s']:.3f}", f"{s['last_s']:.3f}")
    console.print(t)
    for name, c in info["clocks"].items():
        console.print(f"clock {name}: {c.get('device', '')} — {c.get('description', '')}")
    c = info["consent"]
    if c is None:
        console.print("consent: [red]none[/red] (not cleared for any use)")
    else:
        console.print(f"consent: subject {c['subject_id']}, scopes {', '.join(c['scopes'])}, expires {c['expires_at']}, "
                      f"revoked {c['revoked_at']} → research: {c['research']}; commercial: {c['commercial']}")


@app.command()
def sync(
    data: Path = typer.Argument(..., help="A session folder, or a folder of sessions."),
    out: Optional[Path] = typer.Option(None, help="Where aligned episodes go (default DATA/aligned)."),
    workers: int = typer.Option(1, min=1, help="Processes to use."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
) -> None:
    """Estimate clock offset and drift of every motion stream against the video; write aligned episodes."""
    from egoworld.sync.cli import sync_command

    raise typer.Exit(sync_command(data, out, workers, ray))


@app.command()
def demo(
    out: Path = typer.Option(Path("egoworld-demo"), help="Where everything goes."),
    quick: bool = typer.Option(False, "--quick", help="A smaller run for CI (about a minute)."),
    seed: int = typer.Option(0, help="Same seed → same numbers."),
    workers: int = typer.Option(2, min=1, help="Processes to use."),
) -> None:
    """Run the whole pipeline on a small simulated set and summarise what was measured."""
    from egoworld.demo import run_demo

    run_demo(out, quick=quick, seed=seed, workers=workers, console=console)


@app.command()
def improve(
    run: Path = typer.Argument(..., help="A training run (its best checkpoint) or a checkpoint folder."),
    data: Path = typer.Option(..., "--data", help="The data folder whose episodes/ store the run was trained on; new sessions go here."),
    out: Path = typer.Option(..., "--out", help="Where the fine-tuned runs and improve.json go."),
    task: str = typer.Option("push", help="The task the agent acts on."),
    rounds: int = typer.Option(2, min=1, help="Act → append → fine-tune → measure, this many times."),
    sessions: int = typer.Option(8, min=1, help="Interaction sessions per round."),
    seconds: float = typer.Option(12.0, min=4.0, help="Length of each session (the person looks around first)."),
    start: str = typer.Option("table", help="table: sessions start at the table, as closed-loop episodes do; walk: the person walks up first."),
    noise: float = typer.Option(0.3, min=0.0, help="Exploration noise on the planned controls (share of their half-range)."),
    steps: int = typer.Option(150, min=1, help="Fine-tuning steps per round."),
    eval_episodes: int = typer.Option(6, min=1, help="Closed-loop episodes per round, the same starts every round."),
    track: float = typer.Option(0.0, min=0.0, help="Plan by the imagined tracked object (as `egoworld plan --track`)."),
    progress: float = typer.Option(1.0, min=0.0, help="Weight of the reward head's progress in the planner's cost."),
    seed: int = typer.Option(0),
) -> None:
    """The interaction loop: the planner acts in the simulator, its sessions join the store, the model is fine-tuned."""
    from egoworld.improve import ImproveConfig, improve as run_improve

    objective = {k: v for k, v in dict(track=track).items() if v} | ({"progress": progress} if progress != 1.0 else {})
    cfg = ImproveConfig(task=task, rounds=rounds, sessions=sessions, seconds=seconds, start=start, noise=noise, steps=steps,
                        eval_episodes=eval_episodes, objective=objective, seed=seed)
    try:
        run_improve(run, data, out, cfg, echo=console.print)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error[/red]: {e}")
        raise typer.Exit(2) from None


def _register_view() -> None:
    from egoworld.view import register as register_view

    register_view(app)


def _register_rooms() -> None:
    """Commands that live in their own room (each adds itself; heavy imports stay inside commands)."""
    from egoworld.audit.cli import register as register_audit
    from egoworld.capture.importers.cli import register as register_import
    from egoworld.dataset.cli import register as register_dataset
    from egoworld.evaluate.cli import register as register_eval
    from egoworld.imagine.cli_dream import register as register_dream
    from egoworld.evaluate.cli_plan import register as register_plan
    from egoworld.play.cli import register as register_play
    from egoworld.train.cli import register as register_train

    register_import(app)
    register_dataset(app)
    register_audit(app)
    register_train(app)
    register_eval(app)
    register_plan(app)
    register_dream(app)
    register_play(app)


_register_rooms()
_register_view()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
