"""CLI for the episode store: ``egoworld episodes DATA`` (the catalog's ``egoworld query`` is the audit's).

``register(app)`` adds the commands to the main app; heavy imports stay inside the bodies.
"""
from __future__ import annotations

from pathlib import Path

import typer

from egoworld.cluster import RAY_HELP


def episodes_command(
    data: Path = typer.Argument(..., help="A capture folder: sessions + aligned/ (from `egoworld sync`)."),
    out: Path | None = typer.Option(None, "--out", help="Store folder (default DATA/episodes)."),
    size: int | None = typer.Option(None, min=16, help="Store video at SIZE×SIZE (default: the source resolution)."),
    gop: int = typer.Option(16, min=1, max=300, help="Keyframe every GOP frames (short: the loader seeks fast)."),
    fps: float | None = typer.Option(None, help="Store frame rate (default: the most common among the sessions)."),
    workers: int = typer.Option(1, min=1, help="Processes to use."),
    ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
) -> None:
    """Pack synced sessions into the LeRobot-v3 episode store (data, videos, meta, provenance)."""
    from rich.console import Console
    from rich.markup import escape

    from egoworld.cluster import ClusterError
    from egoworld.dataset.build import DatasetError, build_store

    con = Console()
    try:
        r = build_store(data, out, size=size, gop=gop, fps=fps, workers=workers,
                        progress=lambda sid: con.print(f"  packed {sid}"), ray=ray)
    except (DatasetError, ClusterError) as e:
        con.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    con.print(f"wrote {r.episodes} episodes, {r.frames} frames → {r.store}")
    for s in r.excluded:
        con.print(f"[yellow]left out[/yellow] {s['session_id']}: {s['excluded']}")


def register(app: typer.Typer) -> None:
    """Add ``episodes`` to the egoworld CLI (``egoworld query`` is the audit's: it reads the catalog with the verdicts)."""
    app.command("episodes")(episodes_command)
