"""CLI for the audit: ``egoworld audit DATA``, ``egoworld export DATA --use U --out OUT``,
``egoworld consent revoke SUBJECT DATA``. ``register(app)`` adds them to the main app."""
from __future__ import annotations

import json
from pathlib import Path

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


def register(app: typer.Typer) -> None:
    """Add ``audit``, ``export`` and the ``consent`` group (``revoke``) to the egoworld CLI."""
    app.command("audit")(audit_command)
    app.command("export")(export_command)
    consent_app = typer.Typer(no_args_is_help=True, help="Consent records: revoke a subject everywhere.")
    consent_app.command("revoke")(revoke_command)
    app.add_typer(consent_app, name="consent")
