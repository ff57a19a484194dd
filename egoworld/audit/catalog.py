"""The catalog as the audit reads it: the store's views, with every session's verdicts under a spec.

The store keeps what was measured (``egoworld.dataset.catalog``); the verdicts are the spec applied
to those measurements now, so ``egoworld query DATA SQL --spec SPEC`` answers under another
standard without a rebuild. ``episodes`` and ``sessions`` gain ``capture_verdict`` (pass | fail),
``capture_reasons``, ``sync_spec_verdict`` (ok | fail: sync against the spec's thresholds) and
``sync_spec_reasons``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from egoworld.audit.spec import load_spec, session_verdicts
from egoworld.dataset import catalog
from egoworld.dataset.store import Store, open_store

VERDICT_SCHEMA = pa.schema([("session_id", pa.string()), ("capture_verdict", pa.string()), ("capture_reasons", pa.string()),
                            ("sync_spec_verdict", pa.string()), ("sync_spec_reasons", pa.string())])


def verdicts_table(store: Store, spec: dict) -> pa.Table:
    """One row per session the store considered: its verdicts under ``spec``."""
    rows = [{"session_id": s["session_id"], **session_verdicts(spec, s)} for s in store.sessions]
    return pa.Table.from_pylist(rows, schema=VERDICT_SCHEMA)


def connect(path: str | Path, spec_path: str | Path | None = None) -> Any:
    """``dataset.catalog.connect`` with the verdicts under the spec at ``spec_path`` (None: the default)."""
    store = open_store(path)
    return catalog.connect(store.root, verdicts_table(store, load_spec(spec_path)))


def query(path: str | Path, sql: str, spec_path: str | Path | None = None) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` against the catalog with the verdicts under the spec; returns (column names, rows)."""
    store = open_store(path)
    return catalog.query(store.root, sql, verdicts_table(store, load_spec(spec_path)))
