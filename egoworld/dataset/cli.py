"""CLI for the episode store: ``egoworld episodes DATA`` and ``egoworld query DATA "SQL"``.

``register(app)`` adds the commands to the main app; heavy imports stay inside the bodies.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

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


def query_command(
    data: Path = typer.Argument(..., help="The store, or a DATA folder holding episodes/."),
    sql: str = typer.Argument(..., help="SQL over the views episodes, sessions, frames, tasks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (a header, then one line per row)."),
) -> None:
    """Ask the DuckDB catalog a question, e.g. frames per place × task, or sessions with suspect sync."""
    from rich.console import Console

    from egoworld.dataset.build import DatasetError
    from egoworld.dataset.catalog import query as run

    con = Console()
    if as_json and as_csv:
        raise typer.BadParameter("use one of --json and --csv", param_hint="--csv")
    try:
        cols, rows = run(data, sql)
    except DatasetError as e:
        con.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    except Exception as e:
        if type(e).__module__.startswith("duckdb") or type(e).__name__.endswith(("Exception", "Error")):
            con.print(f"[red]SQL error:[/red] {e}")
            raise typer.Exit(1)
        raise
    if as_json:
        print(json.dumps([dict(zip(cols, r)) for r in rows], indent=2, default=str))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows([json.dumps(v, default=str) if isinstance(v, (list, dict)) else v for v in r] for r in rows)
        return
    print_rows(con, cols, rows)
    con.print(f"{len(rows)} row(s)")


def print_rows(con: Any, cols: list[str], rows: list[tuple]) -> None:
    """A table when its columns fit the terminal, else one block per row (column name, value): wide
    results such as ``SELECT * FROM sessions`` stay readable instead of folding to a letter a line."""
    from rich.measure import Measurement
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    cells = [[Text(_cell(v)) for v in r] for r in rows]
    t = Table()
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in cells:
        t.add_row(*r)
    if Measurement.get(con, con.options.update_width(10**6), t).minimum <= con.width:  # unfolded words fit
        con.print(t)
        return
    width = max(len(c) for c in cols)
    for i, r in enumerate(cells, 1):
        con.print(Rule(f"row {i}", align="left"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", min_width=width, no_wrap=True)
        grid.add_column(overflow="fold")
        for c, v in zip(cols, r):
            grid.add_row(c, v)
        con.print(grid)


def _cell(v: Any) -> str:
    """A value as the terminal shows it: lists joined, floats to six decimals, NULL blank."""
    if v is None:
        return ""
    if isinstance(v, float):
        return str(round(v, 6))
    if isinstance(v, (list, tuple)):
        return ", ".join(_cell(x) for x in v)
    return str(v)


def register(app: typer.Typer) -> None:
    """Add ``episodes`` and ``query`` to the egoworld CLI."""
    app.command("episodes")(episodes_command)
    app.command("query")(query_command)
