"""The egoworld command line: one command per arrow of the pipeline (see shared DESIGN).

Where a command lives: every command is a plain function, ``<name>_command``, whose parameters are its
arguments and options and whose docstring is its help. It sits in the ``cli.py`` of the room that does
the work (``egoworld train`` in ``egoworld/train/cli.py``, ``egoworld import camera`` in
``egoworld/capture/importers/cli.py``), and each such file ends with ``register(app)``, which names its
commands and builds its groups (``capture``, ``import``, ``consent``). The commands whose work is one
top-level module (``inspect``, ``demo``, ``improve``, ``view``) are written here the same way. This file
builds ``app`` and calls every ``register`` once, in the order ``egoworld --help`` lists the commands. A
``cli.py`` imports only typer, rich and light modules at the top: the work, and with it torch, MuJoCo and
OpenCV, is imported inside the command body, so ``egoworld --help`` starts in a second.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from egoworld.audit.cli import register as register_audit
from egoworld.capture.cli import register as register_capture
from egoworld.capture.importers.cli import register as register_import
from egoworld.dataset.cli import register as register_dataset
from egoworld.evaluate.cli import approach_value
from egoworld.evaluate.cli import register as register_evaluate
from egoworld.imagine.cli import register as register_imagine
from egoworld.play.cli import register as register_play
from egoworld.sync.cli import register as register_sync
from egoworld.train.cli import register as register_train


class _Group(TyperGroup):
    """``--ray`` takes an optional ADDRESS: given bare (last, or before another option) it means Ray's default."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args = list(args)
        for i in range(len(args) - 1, -1, -1):
            if args[i] == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args.insert(i + 1, "")
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, help="egoworld: first-person capture → world model.")
console = Console()


def inspect_command(
    path: Path = typer.Argument(..., help="A session folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
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


def demo_command(
    out: Path = typer.Option(Path("egoworld-demo"), help="Where everything goes."),
    quick: bool = typer.Option(False, "--quick", help="A smaller run for CI (about a minute)."),
    seed: int = typer.Option(0, help="Same seed → same numbers."),
    workers: int = typer.Option(2, min=1, help="Processes to use."),
) -> None:
    """Run the whole pipeline on a small simulated set and summarise what was measured."""
    from egoworld.demo import run_demo

    run_demo(out, quick=quick, seed=seed, workers=workers, console=console)


def improve_command(
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
    approach: str = typer.Option("0", help="With --track: metres behind the object the hand is drawn to, or per task as push=0.05 (as `egoworld plan --approach`)."),
    seed: int = typer.Option(0),
) -> None:
    """The interaction loop: the planner acts in the simulator, its sessions join the store, the model is fine-tuned."""
    from egoworld.improve import ImproveConfig, improve as run_improve

    objective = {k: v for k, v in dict(track=track, approach=approach_value(approach)).items() if v} | ({"progress": progress} if progress != 1.0 else {})
    cfg = ImproveConfig(task=task, rounds=rounds, sessions=sessions, seconds=seconds, start=start, noise=noise, steps=steps,
                        eval_episodes=eval_episodes, objective=objective, seed=seed)
    try:
        run_improve(run, data, out, cfg, echo=console.print)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error[/red]: {e}")
        raise typer.Exit(2) from None


def view_command(
    path: Path = typer.Argument(..., help="A session folder, an episode store (or DATA holding episodes/), or a training run."),
    save: Optional[Path] = typer.Option(None, "--save", help="Write this .rrd file instead of opening the viewer "
                                        "(the default when there is no display: ./<name>.rrd)."),
    episode: int = typer.Option(0, min=0, help="Episode index (an episode store)."),
    data: Optional[str] = typer.Option(None, help="Episode store for a run's rollout (default: the one it trained on)."),
    split: str = typer.Option("heldout", help="Split to take the rollout clip from (falls back to val)."),
    clip: int = typer.Option(0, min=0, help="Which clip of the split (a run)."),
) -> None:
    """Open a session, an episode or a model rollout in the rerun viewer (or save an .rrd file)."""
    from egoworld.view import view

    try:
        info, saved = view(path, save, episode, data, split, clip)
    except ValueError as e:  # ViewError, SessionError, DatasetError: a message that names the file
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    where = f"saved {saved} (open it with: rerun {saved})" if saved else "sent to the rerun viewer"
    console.print(f"{info['kind']} {info['id']}: {info.get('frames', 0)} frames, {len(info['entities'])} entities — {where}")


def register(app: typer.Typer) -> None:
    """Every command of every room, in the order ``egoworld --help`` lists them (groups come last there)."""
    register_capture(app)  # capture sim
    app.command("inspect")(inspect_command)
    register_sync(app)  # sync
    app.command("demo")(demo_command)
    app.command("improve")(improve_command)
    register_import(app)  # import camera | generic | egodex | aria | lerobot
    register_dataset(app)  # episodes
    register_audit(app)  # audit, query, export, consent revoke
    register_train(app)  # train
    register_evaluate(app)  # eval, plan
    register_imagine(app)  # dream, imagine
    register_play(app)  # play
    app.command("view")(view_command)


register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
