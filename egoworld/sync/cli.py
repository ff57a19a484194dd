"""``egoworld sync DATA [--out OUT] [--workers N | --ray [ADDRESS]]`` (the work is in batch.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from egoworld.cluster import RAY_HELP


def sync_command(
    data: Path = typer.Argument(..., help="A session folder, or a folder of sessions."),
    out: Optional[Path] = typer.Option(None, help="Where aligned episodes go (default DATA/aligned)."),
    workers: int = typer.Option(1, min=1, help="Processes to use."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
) -> None:
    """Estimate clock offset and drift of every motion stream against the video; write aligned episodes."""
    from egoworld.sync import batch

    raise typer.Exit(batch.sync_folder(data, out, workers, ray))


def register(app: typer.Typer) -> None:
    """Add ``sync`` to the egoworld CLI."""
    app.command("sync")(sync_command)
