"""Rights: who may use which episode for what, and consent revocation that reaches every copy.

An episode is *cleared* for a use (research | commercial) when all hold: a consent record exists,
the scope is granted, it has not expired, it has not been revoked, the capture standard passed,
and sync is ok by the spec. ``clearance`` gives the verdict and every reason it fails.

Consent is judged on the *live* record: the session's own ``consent.json``, found through the
store (relative to it, verified by the session's content hashes). The store's copies (meta/episodes
columns, meta/egoworld/sessions.json) are never a substitute for it: when the live record cannot be
read (folder moved out of reach, file missing) the session is not cleared. They can only add a
revocation: if any copy says revoked, the episode is revoked.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from egoworld._atomic import write_json, write_parquet
from egoworld.audit.spec import evaluate_capture, evaluate_sync
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError
from egoworld.dataset.store import Store, locate_session, open_store, read_runs, session_candidates
from egoworld.session import (
    SessionError,
    consent_status,
    find_sessions,
    read_json_object,
    validate_consent,
)

USES = ("research", "commercial")


@dataclass
class LiveConsent:
    """The consent record a decision is made on, where it was read, and why there is none."""

    record: dict | None
    path: Path | None
    problem: str | None = None


def read_consent_file(path: Path) -> dict:
    """A consent.json, validated; anything malformed is a ``DatasetError`` naming the file."""
    try:
        rec = read_json_object(path)
        validate_consent(rec, path)
    except SessionError as e:
        raise DatasetError(path, e.problem + "; fix it or remove it (then the session is cleared for nothing)") from e
    return rec


def live_consent(session: dict, store_root: str | Path | None = None) -> LiveConsent:
    """Read the session's own consent.json now. Not found → no record (never the store's copy);
    a revocation in the store's copy is kept."""
    stored = session.get("consent") or {}
    root = Path(store_root) if store_root is not None else None
    folder = locate_session(root, session)
    if folder is None:
        looked = [str(p) for p in session_candidates(root, session)]
        return LiveConsent(None, None, "consent record cannot be read: the session folder was not found "
                                       f"(looked in {', '.join(looked) or 'nowhere'}; none holds this recording) — "
                                       "keep the sessions beside the store or rebuild it with `egoworld episodes`")
    path = folder / "consent.json"
    if not path.exists():
        return LiveConsent(None, path, f"no consent record ({path} is missing)")
    rec = read_consent_file(path)
    if stored.get("revoked_at") and not rec.get("revoked_at"):
        rec = {**rec, "revoked_at": stored["revoked_at"], "revocation": stored.get("revocation")}
    return LiveConsent(rec, path)


def current_consent(session: dict, store_root: str | Path | None = None) -> dict | None:
    """The consent record to judge by (the live one; None when it cannot be read)."""
    return live_consent(session, store_root).record


def clearance(session: dict, use: str, spec: dict, today: dt.date | None = None, store_root: str | Path | None = None,
              live: LiveConsent | None = None) -> tuple[bool, list[str]]:
    """(cleared, reasons) for one session record of meta/egoworld/sessions.json, judged on the live
    consent (``live``, else read now through ``store_root``)."""
    if use not in USES:
        raise ValueError(f"use must be one of {USES}, got {use!r}")
    reasons = []
    live = live if live is not None else live_consent(session, store_root)
    consent = live.record
    if consent is None:
        reasons.append(live.problem or "no consent record")
    else:
        ok, why = consent_status(consent, use, today)
        if not ok:
            reasons.append(why)
    if session.get("episode_index") is None:
        reasons.append(f"not in the store: {session.get('excluded')}")
    cap = evaluate_capture(spec, session)
    if cap["verdict"] != "pass":
        reasons += [f"capture standard: {r}" for r in cap["reasons"]]
    sy = evaluate_sync(spec, session)
    if sy["verdict"] != "ok":
        reasons += [f"sync: {r}" for r in sy["reasons"]]
    return not reasons, reasons


def rights_table(store: Store, spec: dict, today: dt.date | None = None, facts: list[dict] | None = None) -> list[dict]:
    """Per session: consent scope, expiry, revocation, and whether it is usable for each use.

    ``facts``: per session (in ``store.sessions`` order) its ``live`` consent and ``damaged`` files when
    they were read elsewhere (``egoworld audit --ray``)."""
    out = []
    for k, s in enumerate(store.sessions):
        live = facts[k]["live"] if facts is not None else live_consent(s, store.root)
        consent = live.record
        stored = s.get("consent") or {}
        row = {"session_id": s["session_id"], "episode_index": s.get("episode_index"),
               "subject_id": (consent or stored).get("subject_id"), "scopes": list((consent or {}).get("scopes") or []),
               "expires_at": (consent or {}).get("expires_at"),
               "revoked_at": (consent or {}).get("revoked_at") or stored.get("revoked_at"),
               "consent_present": consent is not None, "consent_file": str(live.path) if live.path else None,
               "consent_problem": live.problem}
        if facts is not None:
            damaged = facts[k].get("damaged")
        else:
            damaged = store.episode_problem(s["episode_index"]) if s.get("episode_index") is not None else None
        row["store_files"] = damaged or "ok"
        for use in USES:
            ok, why = consent_status(consent, use, today)
            if consent is None and live.problem:
                why = live.problem
            cleared, reasons = clearance(s, use, spec, today, live=live)
            if damaged:  # the export could not hand it out: the audit must not call it usable
                cleared, reasons = False, reasons + [f"store file damaged: {damaged}; rebuild the store"]
            row[f"consent_{use}"] = ok
            row[f"consent_{use}_reason"] = why
            row[f"usable_{use}"] = cleared
            row[f"usable_{use}_reasons"] = reasons
        out.append(row)
    return out


def revoked_sessions(data: str | Path) -> dict[str, str]:
    """Session id → why, for every session of a store whose consent is revoked — in the live
    consent.json, in any copy the store keeps, or in its revocation log. Training leaves these out."""
    store = open_store(data)
    logged = {}
    rp = store.root / L.REVOCATIONS_PATH
    if rp.exists():
        for r in json.loads(rp.read_text()).get("revocations", []):
            if isinstance(r, dict) and r.get("subject_id"):
                logged.setdefault(r["subject_id"], r.get("revoked_at"))
    rows = {r["session_id"]: r for r in store.episode_rows()}
    out = {}
    for s in store.sessions:
        stored = s.get("consent") or {}
        live = live_consent(s, store.root).record or {}
        subject = live.get("subject_id") or stored.get("subject_id")
        when = (live.get("revoked_at") or stored.get("revoked_at")
                or (rows.get(s["session_id"]) or {}).get("consent_revoked_at") or logged.get(subject))
        if when:
            out[s["session_id"]] = f"consent of {subject} revoked on {when}"
    return out


# ---------------------------------------------------------------- revocation


def _lineage_items(lin: object) -> list | None:
    """The training items of a lineage.json: ``episodes`` / ``sessions`` lists, or the file itself
    when it is a list; None when the shape is not one of these."""
    if isinstance(lin, list):
        return lin
    if isinstance(lin, dict):
        items: list = []
        for key in ("episodes", "sessions"):
            v = lin.get(key)
            if isinstance(v, list):
                items += v
        return items
    return None


def _hits(items: list, session_ids: set[str], subject: str) -> list[str]:
    out = set()
    for i in items:
        if isinstance(i, dict):
            sid = i.get("session_id")
            if sid in session_ids or (subject and i.get("subject_id") == subject):
                out.add(str(sid) if sid is not None else f"(subject {subject})")
        elif isinstance(i, str) and i in session_ids:
            out.add(i)
    return sorted(out)


def _lineage_user(p: Path, session_ids: set[str], subject: str) -> dict | None:
    try:
        lin = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {"checkpoint": str(p.parent), "lineage": str(p), "error": "unreadable lineage.json"}
    items = _lineage_items(lin)
    if items is None:
        return {"checkpoint": str(p.parent), "lineage": str(p),
                "error": f"lineage.json holds a {type(lin).__name__}, not an object or a list"}
    hits = _hits(items, session_ids, subject)
    return {"checkpoint": str(p.parent), "lineage": str(p), "sessions": hits} if hits else None


def lineage_users(roots: list[Path], session_ids: set[str], subject: str, runs: list[dict] | None = None) -> list[dict]:
    """Checkpoints whose lineage.json lists any of these sessions (or the subject): those under
    ``roots``, and every training run registered in the store (``runs``, from meta/egoworld/runs.json)
    — a registered run that is no longer on disk is still named, from the registry's own list.

    lineage.json lists what a checkpoint was trained on: ``episodes`` as a list of dicts
    (``session_id`` / ``subject_id``) or of session-id strings, or ``sessions``, or a bare list.
    """
    found: dict[str, dict] = {}
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(root.rglob("lineage.json")) if root.is_dir() else []
        for p in files:
            u = _lineage_user(p, session_ids, subject)
            if u:
                found.setdefault(str(p.resolve()), u)
    for run in runs or []:
        folder = Path(run.get("run", ""))
        lin = folder / "lineage.json"
        if lin.exists():
            u = _lineage_user(lin, session_ids, subject)
            if u:
                found.setdefault(str(lin.resolve()), dict(u, registered=True))
            continue
        hits = _hits(list(run.get("session_ids") or []), session_ids, subject)
        if hits or subject in (run.get("subjects") or []):
            found.setdefault(str(lin), {"checkpoint": str(folder), "lineage": str(lin), "sessions": hits or [],
                                        "registered": True, "on_disk": False, "at": run.get("at")})
    return list(found.values())


def _update_store_consent(root: Path, subject: str, revoked_at: str, revocation: dict) -> list[int]:
    """Mark the subject revoked in a store's copies (meta/episodes + sessions.json); episode indices touched."""
    touched: list[int] = []
    ep_paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    for p in ep_paths:
        try:
            t = pq.read_table(p)
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(p, f"not a readable parquet file (truncated or corrupt?): {e}") from e
        rows = t.to_pylist()
        changed = False
        for r in rows:
            if r.get("subject_id") == subject:
                r["consent_revoked_at"] = revoked_at
                rec = json.loads(r["consent_json"]) if r.get("consent_json") else {}
                rec.update({"revoked_at": revoked_at, "revocation": revocation})
                r["consent_json"] = json.dumps(rec)
                touched.append(int(r["episode_index"]))
                changed = True
        if changed:
            write_parquet(p, pa.Table.from_pylist(rows, schema=t.schema))
    sp = root / L.SESSIONS_PATH
    if sp.exists():
        doc = json.loads(sp.read_text())
        changed = False
        for s in doc["sessions"]:
            if (s.get("consent") or {}).get("subject_id") == subject:
                s["consent"] = {**s["consent"], "revoked_at": revoked_at, "revocation": revocation}
                changed = True
        if changed:
            write_json(sp, doc)
    return touched


def revoke(subject: str, data: str | Path, by: str | None = None, date: str | None = None, reason: str = "",
           checkpoints: list[Path] | None = None) -> dict:
    """Revoke every consent of ``subject`` under DATA: the sessions' consent.json, the store's copies,
    and the copies in every export the store has a record of; returns what was touched and which
    exports and checkpoints used the subject's data. Each file is replaced atomically and the
    operation is idempotent, so an interrupted revocation is finished by running it again."""
    data = Path(data)
    date = date or dt.date.today().isoformat()
    dt.date.fromisoformat(date)
    revocation = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "by": by or getpass.getuser(),
                  "effective": date, "reason": reason}
    sessions_touched = []
    for p in find_sessions(data):
        cp = p / "consent.json"
        if not cp.exists():
            continue
        try:
            rec = read_json_object(cp)
        except SessionError as e:
            raise DatasetError(cp, f"{e.problem}; cannot tell whose consent it is — fix it first") from e
        if rec.get("subject_id") != subject:
            continue
        if not rec.get("revoked_at"):
            rec["revoked_at"] = date
        rec.setdefault("revocations", []).append(revocation)
        write_json(cp, rec)
        sessions_touched.append(p.name)
    store_root = None
    for cand in (data, data / "episodes"):
        if (cand / L.INFO_PATH).exists():
            store_root = cand
    episodes, exports_used, session_ids = [], [], set(sessions_touched)
    if store_root is not None:
        store = open_store(store_root)
        session_ids |= {s["session_id"] for s in store.sessions if (s.get("consent") or {}).get("subject_id") == subject}
        episodes = _update_store_consent(store_root, subject, date, revocation)
        exports_path = store_root / L.EXPORTS_PATH
        exports = json.loads(exports_path.read_text())["exports"] if exports_path.exists() else []
        for ex in exports:
            used = sorted(set(ex.get("session_ids", [])) & session_ids)
            if not used:
                continue
            entry = {"export": ex["out"], "use": ex["use"], "at": ex["at"], "sessions": used,
                     "on_disk": (Path(ex["out"]) / L.INFO_PATH).exists()}
            if entry["on_disk"]:
                entry["episodes_marked"] = _update_store_consent(Path(ex["out"]), subject, date, revocation)
            exports_used.append(entry)
    if not session_ids:
        raise DatasetError(data, f"no session with consent subject {subject!r} under here (check the subject id)")
    runs = read_runs(store_root) if store_root is not None else []
    ckpts = lineage_users(list(checkpoints or []) + [data], session_ids, subject, runs)
    record = {"subject_id": subject, "revoked_at": date, **revocation, "sessions": sorted(session_ids),
              "consent_files_updated": sessions_touched, "store": str(store_root) if store_root else None,
              "store_episodes": episodes, "exports_using": exports_used, "checkpoints_using": ckpts}
    if store_root is not None:
        rp = store_root / L.REVOCATIONS_PATH
        doc = json.loads(rp.read_text()) if rp.exists() else {"revocations": []}
        doc["revocations"].append(record)
        write_json(rp, doc)
    return record
