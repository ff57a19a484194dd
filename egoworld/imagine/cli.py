"""`egoworld dream RUN --task T` and `egoworld imagine RUN --from DATA`: torch is imported inside the command bodies only."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def dream_command(
    run: Path = typer.Argument(..., help="A training run folder (its best checkpoint) or a checkpoint folder."),
    task: str = typer.Option(..., "--task", help="The task: dreams start from this task's episodes (push, open_drawer, pick_place, stack)."),
    minutes: float = typer.Option(5.0, "--minutes", min=0.0, help="Training time in imagination."),
    out: Path = typer.Option(..., "--out", help="Policy folder: policy.safetensors, policy.json, snapshots/, eval.json, policy.mp4."),
    data: Optional[str] = typer.Option(None, "--data", help="The episode store (default: the one the model was trained on, from its lineage)."),
    steps: int = typer.Option(0, min=0, help="Updates instead of --minutes (0: as many as fit)."),
    horizon: int = typer.Option(15, min=1, help="Imagined steps per start while training."),
    batch: int = typer.Option(64, min=1, help="Start states per update."),
    snapshots: int = typer.Option(4, min=2, help="Actor copies along training, ranked by dream vs real return."),
    split: str = typer.Option("train", help="Split whose clips of the task seed the dreams (train, val, heldout, all)."),
    eval_starts: int = typer.Option(8, min=1, help="Real starts each policy is evaluated from."),
    eval_horizon: int = typer.Option(150, min=1, help="Steps per evaluation episode (dream and simulator)."),
    eval_split: str = typer.Option("all", help="Split the evaluation starts come from (train, val, heldout, all)."),
    no_sim: bool = typer.Option(False, "--no-sim", help="Only the dream (no simulator: real data, or a quick look)."),
    progress: str = typer.Option("head", help="What the dream's reward is the change of: head (the reward head) or track "
                                 "(the tracked object's way to its goal: models trained with --set track_points=2)."),
    seed: int = typer.Option(0, help="Same seed → same policy and numbers."),
    threads: int = typer.Option(1, min=0, help="torch CPU threads (0: torch's default)."),
) -> None:
    """Train an actor-critic purely in imagination, then run it in the simulator against random, still and the scripted person."""
    from rich.console import Console

    from egoworld.imagine.actor_critic import ACConfig
    from egoworld.imagine.dream_eval import run_dream

    console = Console()
    cfg = ACConfig(task=task, minutes=minutes, steps=steps, horizon=horizon, batch=batch, snapshots=snapshots,
                   split=split, seed=seed, threads=threads, progress=progress)
    try:
        res = run_dream(run, task, out, data=data, cfg=cfg, eval_starts=eval_starts, horizon=eval_horizon,
                        eval_split=eval_split, sim=not no_sim, echo=console.print)
    except ValueError as e:
        console.print(f"[red]error[/red]: {e}")
        raise typer.Exit(2)
    console.print(dream_table(res))
    rc = res.get("rank_correlation", {})
    for k in ("over_policies", "over_episodes"):
        r = rc.get(k)
        if r:
            rho = "n/a" if r["rho"] is None else f"{r['rho']:+.2f} (p {r['p']:.2g})"
            console.print(f"Spearman ρ(dream return, real return) {k.replace('_', ' ')}: {rho}, n = {r['n']}")
    console.print(f"wrote {Path(out) / 'eval.json'}" + (f" and {Path(out) / res['video']}" if res.get("video") else ""))


def dream_table(res: dict):
    from rich.table import Table

    t = Table(title=f"{res['task']}: {res['horizon']} steps from {len(res['starts'])} real starts")
    for c in ("policy", "real success", "real return", "dream return", "dream − real", "dream success"):
        t.add_column(c, justify="right" if c != "policy" else "left")

    def f(x, fmt="{:+.3f}"):
        return "—" if x is None else fmt.format(x)

    for name, s in res["policies"].items():
        t.add_row(name, f(s.get("real_success"), "{:.0%}"), f(s.get("real_return")), f(s["dream_return"]),
                  f(s.get("gap")), f(s["dream_success"], "{:.0%}"))
    rec = res.get("scripted_recorded")
    if rec:
        t.add_row("scripted (as recorded)", f(rec["real_success"], "{:.0%}"), f(rec["real_return"]), "—", "—", "—")
    return t


def imagine_command(
    run: Path = typer.Argument(..., help="A training run folder (its best checkpoint) or a checkpoint folder."),
    data: str = typer.Option(..., "--from", help="The episode store whose episodes seed the rollouts."),
    episodes: int = typer.Option(16, "--episodes", min=1, help="Synthetic episodes to write."),
    out: Path = typer.Option(..., "--out", help="The synthetic store (same LeRobot-v3 layout, flagged synthetic)."),
    length: int = typer.Option(64, min=2, help="Frames per synthetic episode."),
    context: Optional[int] = typer.Option(None, min=1, help="Real frames filtered before each rollout (default: the model's)."),
    task: Optional[str] = typer.Option(None, help="Only seed from this task's episodes."),
    split: str = typer.Option("train", help="Split the seed episodes come from (train, val, heldout, all)."),
    modes: str = typer.Option("recorded,perturbed,random,still", help="Action modes, cycled over the episodes."),
    seed: int = typer.Option(0, help="Same seed → same episodes."),
) -> None:
    """Synthetic episodes: rollouts from real starting states under varied actions, with lineage to model and seeds."""
    from rich.console import Console

    from egoworld.imagine.synthetic import export_synthetic

    console = Console()
    res = export_synthetic(run, data, out, episodes=episodes, length=length, context=context, task=task, split=split,
                           modes=tuple(m.strip() for m in modes.split(",") if m.strip()), seed=seed)
    console.print(f"wrote {res['episodes']} synthetic episodes ({res['frames']} frames) to {out}; "
                  f"lineage in {Path(out) / res['lineage']}")


def register(app: typer.Typer) -> None:
    """Add `dream` and `imagine` to the egoworld CLI."""
    app.command("dream")(dream_command)
    app.command("imagine")(imagine_command)
