"""`egoworld eval RUN --data DATA` (open loop) and `egoworld plan RUN --task T` (closed loop in the simulator).

Torch is imported inside the command bodies only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def eval_command(
    run: Path = typer.Argument(..., help="A training run folder (its best checkpoint) or a checkpoint folder."),
    data: str = typer.Option(..., "--data", help="The episode store (or synthetic:N) — val and held-out splits are scored."),
    blind: Optional[Path] = typer.Option(None, "--blind", help="Run trained with --action-blind: the action-blind baseline."),
    compare: Optional[List[str]] = typer.Option(None, "--compare", help="NAME=RUN scored on the same clips (ablations)."),
    context: Optional[int] = typer.Option(None, help="Context frames before open-loop prediction (default: the run's)."),
    horizon: int = typer.Option(32, min=1, help="Longest open-loop horizon."),
    max_clips: int = typer.Option(64, min=1, help="Clips per split."),
    probe_frames: Optional[int] = typer.Option(
        None, min=2, help="Frames per probe-fitting clip (default: context + horizon, so the probe is fitted on "
                          "imagined states of every horizon it is applied to)."),
    videos: int = typer.Option(3, min=0, help="Side-by-side videos to write."),
    out: Optional[Path] = typer.Option(None, help="Where eval.json and the figures go (default RUN/eval)."),
) -> None:
    """Open-loop metrics vs horizon against copy-last and action-blind baselines, probes, counterfactuals."""
    from egoworld.evaluate.run import evaluate

    pairs = {}
    for c in compare or []:
        if "=" not in c:
            raise typer.BadParameter(f"{c!r}: expected NAME=RUN", param_hint="--compare")
        k, v = c.split("=", 1)
        pairs[k] = v
    evaluate(run, data, blind=blind, compare=pairs, context=context, horizon=horizon, max_clips=max_clips,
             probe_frames=probe_frames, videos=videos, out=out)


def _split(s: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = known if s == "all" else tuple(x.strip() for x in s.split(",") if x.strip())
    bad = [x for x in items if x not in known]
    if bad:
        raise typer.BadParameter(f"unknown {what} {bad}; known: {', '.join(known)} (or 'all')", param_hint=f"--{what}")
    return items


def approach_value(text: str) -> float | dict:
    """`--approach` of `plan` and `improve`: metres for all tasks, or per task (`Objective.parse_approach`)."""
    from egoworld.imagine.plan import Objective

    try:
        value = Objective.parse_approach(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--approach") from e
    if any(v < 0 for v in (value.values() if isinstance(value, dict) else [value])):
        raise typer.BadParameter("metres behind the object cannot be negative", param_hint="--approach")
    return value


def plan_command(
    run: Path = typer.Argument(..., help="A training run folder (its best checkpoint) or a checkpoint folder."),
    task: Optional[str] = typer.Option(None, "--task", help="Comma-separated tasks, or 'all' (push, open_drawer, pick_place, stack) [default: all; --quick: push]."),
    episodes: Optional[int] = typer.Option(None, min=1, help="Episodes per task × places split, the same for every method [default: 30; --quick: 2]."),
    oracle_episodes: Optional[int] = typer.Option(None, min=0, help="Fewer episodes for the costly sim-oracle (default: --episodes)."),
    methods: str = typer.Option("all", help="Comma-separated: random, model, oracle, scripted (or 'all')."),
    places: str = typer.Option("all", help="held_in, held_out (or 'all'): places the run trained on / never saw."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Frames per episode, 30 fps [default: 90; --quick: 45]."),
    planner: str = typer.Option("cem", help="cem | mppi."),
    samples: Optional[int] = typer.Option(None, min=1, help="Candidate sequences per planner iteration [default: 64; --quick: 32]."),
    iterations: Optional[int] = typer.Option(None, min=1, help="Planner iterations per replan [default: 3; --quick: 2]."),
    horizon: int = typer.Option(4, min=1, help="Knots looked ahead."),
    repeat: int = typer.Option(3, min=1, help="Frames each knot is held (= frames between replans)."),
    dims: str = typer.Option("hands", help="Planned control columns: hands (wrist moves + grips), moves (wrist moves alone, hands open), wrists (+ rotations), all."),
    oracle_samples: Optional[int] = typer.Option(None, min=1, help="Samples for the sim-oracle only (default: --samples)."),
    goal: bool = typer.Option(False, "--goal", help="Score by latent distance to a goal image (the scripted person's success frame) instead of the reward head."),
    uncertainty: float = typer.Option(0.0, min=0.0, help="Penalty on the reward ensemble's disagreement (models trained with --set reward_heads=K)."),
    track: float = typer.Option(0.0, min=0.0, help="Weight of the goal-conditioned cost on the imagined tracked object: hand to object + object to goal, metres (models trained with --set track_points=2)."),
    progress: float = typer.Option(1.0, min=0.0, help="Weight of the reward head's predicted progress (0: plan by the other terms alone)."),
    approach: str = typer.Option("0", help="With --track: draw the hand this many metres behind the object, away from its goal (where a push starts), instead of to the object; per task as push=0.05 (other tasks 0)."),
    render_size: int = typer.Option(128, min=16, help="Camera resolution; the model sees it area-scaled to its own size."),
    seed: int = typer.Option(0, help="Same seed → same episodes and same numbers."),
    workers: int = typer.Option(1, min=1, help="Processes (episodes run in parallel; one torch thread each)."),
    quick: bool = typer.Option(False, "--quick", help="A smoke run: push, 2 episodes × 45 frames, smaller planners."),
    video: bool = typer.Option(True, "--video/--no-video", help="Save one planned episode as an mp4."),
    diagnose: bool = typer.Option(True, "--diagnose/--no-diagnose", help="Rank agreement of the model's cost with the true cost (16 plans per task × places)."),
    out: Optional[Path] = typer.Option(None, help="Where results.json, episodes.jsonl and the video go (default RUN/closed_loop)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
) -> None:
    """Plan with the world model in the simulator (CEM/MPPI, receding horizon) against random, sim-oracle and scripted."""
    from egoworld.capture.sim.catalog import TASKS
    from egoworld.evaluate.closed_loop import (
        METHODS,
        QUICK,
        SPLITS,
        closed_loop_eval,
        print_table,
    )

    planned = dict(method=planner, horizon=horizon, repeat=repeat, dims=dims, seed=seed)
    planned |= {k: v for k, v in dict(samples=samples, iterations=iterations).items() if v is not None}
    overrides: dict = dict(planner=(QUICK["planner"] | planned) if quick else planned)
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    objective = {k: v for k, v in dict(uncertainty=uncertainty, track=track, approach=approach_value(approach)).items() if v}
    if progress != 1.0:
        objective["progress"] = progress
    if objective:
        overrides["objective"] = objective
    if oracle_samples:
        overrides["oracle_planner"] = dict(samples=oracle_samples)
    try:
        result = closed_loop_eval(run, tasks=_split(task, tuple(TASKS), "task") if task else None, episodes=episodes,
                                  places=_split(places, SPLITS, "places"), methods=_split(methods, METHODS, "methods"),
                                  seed=seed, out=out, video=video, workers=workers, quick=quick, goal=goal,
                                  render_size=render_size, oracle_episodes=oracle_episodes, diagnose=diagnose,
                                  echo=(lambda m: typer.echo(m, err=True)) if as_json else print, **overrides)
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_table(result)
        r = result.get("model_over_oracle", {})
        if r:
            typer.echo("model / oracle: " + "; ".join(f"{s}: success ×{v['success']}, progress gain ×{v['progress_gain']}"
                                                      for s, v in r.items()))
        if "replan_seconds_model" in result:
            typer.echo(f"world-model replan: {result['replan_seconds_model']:.3f} s (mean over episodes)")


def register(app: typer.Typer) -> None:
    """Add `eval` and `plan` to the egoworld CLI."""
    app.command("eval")(eval_command)
    app.command("plan")(plan_command)
