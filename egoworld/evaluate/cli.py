"""`egoworld eval RUN --data DATA`: torch is imported inside the command body only."""
from __future__ import annotations

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


def register(app: typer.Typer) -> None:
    """Add `eval` to the egoworld CLI."""
    app.command("eval")(eval_command)
