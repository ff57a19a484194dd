"""CLI for the audit: ``egoworld audit DATA``, ``egoworld query DATA SQL`` (the catalog with the verdicts),
``egoworld export DATA --use U --out OUT``, ``egoworld consent revoke SUBJECT DATA``. ``register(app)`` adds them to the main app."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer

from egoworld.cluster import RAY_HELP


def audit_command(
    data: Path = typer.Argument(..., help="The store, or a DATA folder holding episodes/."),
    spec: Path | None = typer.Option(None, "--spec", help="Capture-standard spec (YAML/JSON); default egoworld/audit/specs/default.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Folder for audit.json + report.html (default: DATA)."),
    checkpoints: list[Path] = typer.Option([], "--checkpoints", help="Folders to search for lineage.json (repeatable)."),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write report.html."),
    ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help=RAY_HELP),
) -> None:
    """Capture standard, sync, coverage and rights → audit.json and a self-contained report.html."""
    from rich.console import Console
    from rich.markup import escape

    from egoworld._atomic import write_json
    from egoworld.cluster import ClusterError
    from egoworld.audit.audit import run_audit
    from egoworld.audit.report import write_report
    from egoworld.audit.spec import SpecError
    from egoworld.dataset.build import DatasetError
    from egoworld.dataset.store import open_store

    con = Console()
    try:
        result = run_audit(data, spec, checkpoints, ray=ray)
        store = open_store(data)
        folder = out or Path(data)
        if html:
            write_report(folder / "report.html", result, store.sessions, store.root, store.fps)
        motion = result.pop("_motion_samples")
        write_json(folder / "audit.json", result)
        result["_motion_samples"] = motion
    except (DatasetError, SpecError, ClusterError) as e:
        con.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    sm = result["summary"]
    con.print(f"{sm['sessions']} sessions, {sm['episodes']} episodes, {sm['hours'] * 60:.1f} min; "
              f"usable research {sm['usable_research']}, commercial {sm['usable_commercial']}")
    for f in result["flagged"]:
        con.print(f"[red]flagged[/red] {f['session_id']}: " + "; ".join(f["capture"] + f["sync"] + f.get("assumed", [])))
    con.print(f"wrote {folder / 'audit.json'}" + (f" and {folder / 'report.html'}" if html else ""))

def export_command(
    data: Path = typer.Argument(..., help="The store, or a DATA folder holding episodes/."),
    use: str = typer.Option(..., "--use", help="research | commercial."),
    out: Path = typer.Option(..., "--out", help="Folder for the exported LeRobot-v3 dataset."),
    spec: Path | None = typer.Option(None, "--spec", help="Capture-standard spec (default: the default spec)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Write only the episodes cleared for USE (consent, scope, expiry, revocation, capture standard, sync)."""
    from rich.console import Console

    from egoworld.audit.export import export as run
    from egoworld.audit.spec import SpecError
    from egoworld.dataset.build import DatasetError

    con = Console()
    if use not in ("research", "commercial"):
        raise typer.BadParameter(f"{use!r}; use research or commercial", param_hint="--use")
    try:
        rec = run(data, use, out, spec, force=force)
    except (DatasetError, SpecError) as e:
        con.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    con.print(f"exported {rec['episodes']} episodes ({rec['frames']} frames) cleared for {use} → {out}")
    for x in rec["excluded"]:
        con.print(f"[yellow]left out[/yellow] {x['session_id']}: " + "; ".join(x["reasons"]))

def revoke_command(
    subject: str = typer.Argument(..., help="The consent subject_id (e.g. person_03)."),
    data: Path = typer.Argument(..., help="The capture folder (sessions + episodes/)."),
    by: str | None = typer.Option(None, "--by", help="Who records the revocation (default: the user)."),
    date: str | None = typer.Option(None, "--date", help="Effective date, ISO (default: today)."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the record)."),
    checkpoints: list[Path] = typer.Option([], "--checkpoints", help="Folders to search for lineage.json (repeatable)."),
) -> None:
    """Revoke a subject's consent in every copy; list the exports and checkpoints that used it."""
    from rich.console import Console

    from egoworld.audit.rights import revoke as run
    from egoworld.dataset.build import DatasetError

    con = Console()
    try:
        rec = run(subject, data, by=by, date=date, reason=reason, checkpoints=checkpoints)
    except (DatasetError, ValueError) as e:
        con.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    con.print(f"revoked {subject} as of {rec['revoked_at']} (by {rec['by']}): {len(rec['sessions'])} session(s), "
              f"{len(rec['store_episodes'])} store episode(s)")
    for e in rec["exports_using"]:
        con.print(f"[yellow]export used it[/yellow] {e['export']} ({e['use']}, {e['at']}): {', '.join(e['sessions'])}")
    for c in rec["checkpoints_using"]:
        con.print(f"[yellow]checkpoint used it[/yellow] {c['checkpoint']}")
    print(json.dumps({k: rec[k] for k in ("subject_id", "revoked_at", "sessions")}))


def query_command(
    data: Path = typer.Argument(..., help="The store, or a DATA folder holding episodes/."),
    sql: str = typer.Argument(..., help="SQL over the views episodes, sessions, frames, tasks."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (a header, then one line per row)."),
    spec: Path | None = typer.Option(None, "--spec", help="Capture-standard spec the verdict columns are judged by "
                                     "(default egoworld/audit/specs/default.yaml)."),
) -> None:
    """Ask the DuckDB catalog a question, e.g. frames per place × task, or sessions failing the capture standard."""
    from rich.console import Console

    from egoworld.audit.catalog import query as run
    from egoworld.audit.spec import SpecError
    from egoworld.dataset.build import DatasetError

    con = Console()
    if as_json and as_csv:
        raise typer.BadParameter("use one of --json and --csv", param_hint="--csv")
    try:
        cols, rows = run(data, sql, spec)
    except (DatasetError, SpecError) as e:
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
    """Add ``audit``, ``export`` and the ``consent`` group (``revoke``) to the egoworld CLI."""
    app.command("audit")(audit_command)
    app.command("query")(query_command)
    app.command("export")(export_command)
    consent_app = typer.Typer(no_args_is_help=True, help="Consent records: revoke a subject everywhere.")
    consent_app.command("revoke")(revoke_command)
    app.add_typer(consent_app, name="consent")
