"""`egoworld train`: options are fields of the config dataclass (plus ``--set field=value`` for the rest).

Torch is imported inside the command body only, so ``egoworld --help`` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer


def parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """``["deter=64", "lr=1e-3", "action_blind=true"]`` → typed overrides (JSON values, else strings)."""
    out: dict[str, Any] = {}
    for s in sets or []:
        if "=" not in s:
            raise typer.BadParameter(f"{s!r}: expected FIELD=VALUE", param_hint="--set")
        k, v = s.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def train_command(
    data: str = typer.Argument(..., help="An episode store folder (`egoworld episodes`), or synthetic:N for the square world."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, config.json, lineage.json, metrics.csv."),
    preset: str = typer.Option("tiny", help="tiny (CPU, minutes) | small (CPU, an hour) | base (GPU)."),
    minutes: Optional[float] = typer.Option(None, help="Time budget; the step count is fixed after timing the first steps."),
    steps: Optional[int] = typer.Option(None, help="Exact number of steps (overrides --minutes)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from this run's (or checkpoint's) weights with a fresh optimizer: train longer, or fine-tune on a grown store (the config must match; give another --seed for new batches)."),
    seed: Optional[int] = typer.Option(None), batch_size: Optional[int] = typer.Option(None),
    seq_len: Optional[int] = typer.Option(None), image_size: Optional[int] = typer.Option(None),
    overshoot: Optional[int] = typer.Option(None, help="Open-loop steps of the multi-step loss (0: off)."),
    action_blind: bool = typer.Option(False, "--action-blind", help="Zero every action (the action-blind baseline)."),
    ckpt_every: Optional[int] = typer.Option(None), val_every: Optional[int] = typer.Option(None),
    keep_last: Optional[int] = typer.Option(None),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Any other config field: --set deter=256 (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    grad_dump: Optional[Path] = typer.Option(None, hidden=True, help="Save the first step's averaged gradients (tests)."),
) -> None:
    """Train the world model on aligned episodes; checkpoints are safetensors with a lineage manifest."""
    from egoworld.model.config import preset as make_preset
    from egoworld.train.loop import train

    overrides = dict(minutes=minutes, steps=steps, seed=seed, batch_size=batch_size, seq_len=seq_len,
                     image_size=image_size, overshoot=overshoot, ckpt_every=ckpt_every,
                     val_every=val_every, keep_last=keep_last, action_blind=True if action_blind else None)
    overrides.update(parse_sets(set_))
    try:
        cfg = make_preset(preset, **overrides)
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(str(e)) from e
    cfg.extra = dict(cfg.extra, data=str(data))
    from egoworld.dataset.build import DatasetError

    try:
        summary = train(cfg, data, out, resume=resume, progress=progress, grad_dump=grad_dump, init_from=init_from)
    except (DatasetError, FileExistsError, ValueError, OSError) as e:
        # a bad store, an occupied --out or an empty split: say which file and what to do, no traceback
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if summary.get("checkpoint"):
        print(json.dumps({k: summary[k] for k in ("steps", "best_val", "checkpoint", "seconds")}))


def register(app: typer.Typer) -> None:
    """Add `train` to the egoworld CLI."""
    app.command("train")(train_command)
