"""Rights: who may use which episode for what, and consent revocation that reaches every copy.

An episode is *cleared* for a use (research | commercial) when all hold: a consent record exists,
the scope is granted, it has not expired, it has not been revoked, the capture standard passed,
and sync is ok by the spec. ``clearance`` gives the verdict and every reason it fails.

The session's ``consent.json`` is the primary record; the store keeps copies (meta/episodes
columns, meta/egoworld/sessions.json). A revocation written anywhere wins: if either copy says
revoked, the episode is revoked.
"""
from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from egoworld._atomic import write_json, write_parquet
from egoworld.audit.spec import evaluate_capture, evaluate_sync
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError
from egoworld.dataset.store import Store, open_store
from egoworld.session import (
    SessionError,
    consent_status,
    find_sessions,
    validate_consent,
)

USES = ("research", "commercial")


def current_consent(session: dict) -> dict | None:
    """The consent record to judge by: the session's consent.json when the session is on disk,
    else the store's copy; a revocation in the store's copy is kept either way."""
    stored = session.get("consent")
    path = Path(session.get("consent_file") or Path(session.get("path", "")) / "consent.json")
    if Path(session.get("path", "")).is_dir():
        if not path.exists():
            return None
        try:
            rec = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(path, f"not valid JSON ({e}); fix it or remove it (then the session is cleared for nothing)") from e
        if not isinstance(rec, dict):
            raise DatasetError(path, "must hold a JSON object")
        try:
            validate_consent(rec, path)
        except SessionError as e:
            raise DatasetError(path, e.problem) from e
        if stored and stored.get("revoked_at") and not rec.get("revoked_at"):
            rec = {**rec, "revoked_at": stored["revoked_at"], "revocation": stored.get("revocation")}
        return rec
    return stored


def clearance(session: dict, use: str, spec: dict, today: dt.date | None = None) -> tuple[bool, list[str]]:
    """(cleared, reasons) for one session record of meta/egoworld/sessions.json."""
    if use not in USES:
        raise ValueError(f"use must be one of {USES}, got {use!r}")
    reasons = []
    consent = current_consent(session)
    if consent is None:
        reasons.append(f"no consent record ({Path(session.get('path', '')) / 'consent.json'} is missing)")
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


def rights_table(store: Store, spec: dict, today: dt.date | None = None) -> list[dict]:
    """Per session: consent scope, expiry, revocation, and whether it is usable for each use."""
    out = []
    for s in store.sessions:
        consent = current_consent(s)
        row = {"session_id": s["session_id"], "episode_index": s.get("episode_index"),
               "subject_id": (consent or {}).get("subject_id"), "scopes": list((consent or {}).get("scopes") or []),
               "expires_at": (consent or {}).get("expires_at"), "revoked_at": (consent or {}).get("revoked_at"),
               "consent_present": consent is not None}
        for use in USES:
            ok, why = consent_status(consent, use, today)
            cleared, reasons = clearance(s, use, spec, today)
            row[f"consent_{use}"] = ok
            row[f"consent_{use}_reason"] = why
            row[f"usable_{use}"] = cleared
            row[f"usable_{use}_reasons"] = reasons
        out.append(row)
    return out


# ---------------------------------------------------------------- revocation


def lineage_users(roots: list[Path], session_ids: set[str], subject: str) -> list[dict]:
    """Checkpoints whose lineage.json lists any of these sessions (or the subject).

    lineage.json (model issue) lists what a checkpoint was trained on; we accept ``episodes`` as a
    list of dicts (``session_id`` / ``subject_id``) or of session-id strings, or ``sessions``.
    """
    found = []
    for root in roots:
        for p in sorted(Path(root).rglob("lineage.json")):
            try:
                lin = json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                found.append({"checkpoint": str(p.parent), "lineage": str(p), "error": "unreadable lineage.json"})
                continue
            items = list(lin.get("episodes") or []) + list(lin.get("sessions") or [])
            hits = sorted({(i.get("session_id") if isinstance(i, dict) else str(i)) for i in items
                           if (isinstance(i, dict) and (i.get("session_id") in session_ids or i.get("subject_id") == subject))
                           or (isinstance(i, str) and i in session_ids)} - {None})
            if hits:
                found.append({"checkpoint": str(p.parent), "lineage": str(p), "sessions": hits})
    return found


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
            rec = json.loads(cp.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(cp, f"not valid JSON ({e}); cannot tell whose consent it is — fix it first") from e
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
    ckpts = lineage_users(list(checkpoints or []) + [data], session_ids, subject)
    record = {"subject_id": subject, "revoked_at": date, **revocation, "sessions": sorted(session_ids),
              "consent_files_updated": sessions_touched, "store": str(store_root) if store_root else None,
              "store_episodes": episodes, "exports_using": exports_used, "checkpoints_using": ckpts}
    if store_root is not None:
        rp = store_root / L.REVOCATIONS_PATH
        doc = json.loads(rp.read_text()) if rp.exists() else {"revocations": []}
        doc["revocations"].append(record)
        write_json(rp, doc)
    return record
