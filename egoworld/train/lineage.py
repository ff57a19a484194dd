"""lineage.json: exactly what a checkpoint was trained on, and under which rights and code.

Why: a model inherits the obligations of its data. To honour a consent revocation, or to answer
"was place X ever seen?", one needs the list of training episodes with their content hashes and
consent scopes, the code version that consumed them and the data-spec verdicts at the time.
Only the *training* split is listed: validation and held-out episodes never produce gradients.
"""
from __future__ import annotations

import subprocess
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import egoworld
from egoworld.session import file_sha256

_EP_KEYS = ("episode_index", "session_id", "episode_id", "content_hash", "place", "person", "task", "task_id", "length",
            "source", "subject_id", "consent_expires_at", "consent_revoked_at", "sync_verdict", "capture_verdict")


def _as_dict(ep: Any) -> dict[str, Any]:
    if isinstance(ep, dict):
        return ep
    if is_dataclass(ep):
        return asdict(ep)
    return {k: getattr(ep, k) for k in dir(ep) if not k.startswith("_") and not callable(getattr(ep, k))}


def _scopes(consent: Any) -> Any:
    if consent is None:
        return None
    if isinstance(consent, dict):
        return consent.get("scopes", consent)
    if isinstance(consent, (list, tuple)):
        return list(consent)
    return str(consent)


def episode_record(ep: Any) -> dict[str, Any]:
    d = _as_dict(ep)
    rec = {k: d[k] for k in _EP_KEYS if k in d and d[k] is not None}
    rec["consent_scopes"] = _scopes(d.get("consent", d.get("consent_scopes", d.get("scopes"))))
    verdicts = {k: d[k] for k in ("sync_verdict", "capture_verdict", "spec_verdict") if d.get(k) is not None}
    if verdicts:
        rec["spec_verdicts"] = verdicts
    return rec


def _capture_verdicts(store: Any) -> dict[str, str]:
    """Session id → the capture standard's verdict (the audit's default spec) on what the store measured."""
    sessions = getattr(store, "sessions", None) or []
    if not sessions:
        return {}
    from egoworld.audit.spec import evaluate_capture, load_spec

    spec = load_spec()
    return {s["session_id"]: evaluate_capture(spec, s)["verdict"] for s in sessions if s.get("session_id")}


def episode_records(ds: Any) -> list[dict[str, Any]]:
    """One record per training episode; content hashes are the sha256 of the episode's stored files,
    verdicts the default spec's on the store's measurements as of training."""
    eps = ds.episodes
    rows = eps.to_pylist() if hasattr(eps, "to_pylist") else list(eps)
    out = []
    store = getattr(ds, "store", None)
    capture = _capture_verdicts(store)
    for row in rows:
        if "capture_verdict" not in row and row.get("session_id") in capture:
            row = dict(row, capture_verdict=capture[row["session_id"]])
        rec = episode_record(row)
        if store is not None and "content_hash" not in rec:
            ep = int(row["episode_index"])
            rec["content_hash"] = {"data": file_sha256(store.data_file(ep)), "video": file_sha256(store.video_file(ep))}
        out.append(rec)
    return out


def code_version() -> dict[str, Any]:
    """Package version and, when run from a git checkout, the commit and whether the tree was dirty."""
    out: dict[str, Any] = {"egoworld": egoworld.__version__}
    root = Path(egoworld.__file__).resolve().parent.parent
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                           timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout
        out["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def build_lineage(data: str, train_ds: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    import torch

    eps = episode_records(train_ds)
    spec = None
    for attr in ("spec_verdicts", "spec_report", "audit"):
        fn = getattr(train_ds, attr, None)
        if fn is not None:
            spec = fn() if callable(fn) else fn
            break
    if spec is None:
        counts: dict[str, int] = {}
        for e in eps:
            for k, v in e.get("spec_verdicts", {}).items():
                counts[f"{k}={v}"] = counts.get(f"{k}={v}", 0) + 1
        spec = {"verdict_counts": counts, "source": "episode metadata (per-episode verdicts above)"} if counts \
            else "not audited"
    return {
        "data": str(data),
        "split": "train",
        "num_episodes": len(eps),
        "episodes": eps,
        "data_spec": spec,
        "code": code_version() | {"torch": torch.__version__},
        **(extra or {}),
    }
