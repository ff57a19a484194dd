"""A DuckDB catalog over the store's metadata: ask questions in SQL without decoding video.

Views (one in-memory DuckDB connection per call):

* ``episodes`` — meta/episodes: LeRobot's columns plus provenance (session_id, place, person,
  objects, task_id, subject_id, consent_*, sync_*, capture metrics, length …);
* ``sessions`` — every session the store considered, including those left out (``excluded``
  says why): one flat row each from meta/egoworld/sessions.json;
* ``frames`` — the per-frame data parquet (``"observation.state"``, action, action_valid, …);
* ``tasks`` — task_index, task.

The store keeps measurements, not verdicts: ``egoworld query`` reads this catalog through the audit
(``egoworld.audit.catalog``), which joins each session's verdicts under a spec onto ``episodes`` and
``sessions`` with ``extra``.

``episodes`` and ``sessions`` also carry the columns people ask for by name: ``task`` (the task id,
as ``task_id``), ``frames`` and ``minutes`` (of video at the store's frame rate; a session's at its
declared rate).

Example: ``SELECT place, task, sum(frames) AS frames, sum(minutes) AS minutes FROM episodes GROUP BY ALL ORDER BY ALL``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from egoworld.dataset import layout as L
from egoworld.dataset.store import Store, open_store

EXAMPLES = {
    "frames per place × task": "SELECT place, task, sum(frames) AS frames, sum(minutes) AS minutes, count(*) AS episodes "
                               "FROM episodes GROUP BY ALL ORDER BY ALL",
    "suspect sync": "SELECT session_id, sync_verdict, sync_reason FROM sessions WHERE sync_verdict = 'suspect'",
    "left out": "SELECT session_id, excluded FROM sessions WHERE excluded IS NOT NULL",
}


def sessions_table(store: Store) -> pa.Table:
    rows = []
    for s in store.sessions:
        c = s.get("consent") or {}
        sync, cap, rig = s.get("sync") or {}, s.get("capture") or {}, s.get("rig") or {}
        rows.append({
            "session_id": s["session_id"], "episode_index": s.get("episode_index"), "excluded": s.get("excluded"),
            "source": s.get("source"), "place": s.get("place"), "person": s.get("person"), "objects": s.get("objects") or [],
            "task_id": s.get("task"), "subject_id": c.get("subject_id"), "consent_present": s.get("consent") is not None,
            "consent_scopes": list(c.get("scopes") or []),
            "consent_expires_at": None if c.get("expires_at") is None else str(c["expires_at"]),
            "consent_revoked_at": None if c.get("revoked_at") is None else str(c["revoked_at"]),
            "sync_verdict": sync.get("verdict"), "sync_reason": sync.get("reason"),
            "sync_max_abs_drift_ppm": sync.get("max_abs_drift_ppm"), "sync_max_residual_ms": sync.get("max_residual_ms"),
            "fps_declared": None if rig.get("fps") is None else float(rig["fps"]),
            "width": rig.get("width"), "height": rig.get("height"), "camera_model": rig.get("camera_model"),
            "measured_fps": cap.get("measured_fps"), "brightness_mean": cap.get("brightness_mean"),
            "sharpness_lapvar": cap.get("sharpness_lapvar"), "dropped_rate": cap.get("dropped_rate"),
            "frames": cap.get("frames_nominal"),
        })
    schema = pa.schema([
        ("session_id", pa.string()), ("episode_index", pa.int64()), ("excluded", pa.string()), ("source", pa.string()),
        ("place", pa.string()), ("person", pa.string()), ("objects", pa.list_(pa.string())), ("task_id", pa.string()),
        ("subject_id", pa.string()), ("consent_present", pa.bool_()), ("consent_scopes", pa.list_(pa.string())),
        ("consent_expires_at", pa.string()), ("consent_revoked_at", pa.string()), ("sync_verdict", pa.string()),
        ("sync_reason", pa.string()), ("sync_max_abs_drift_ppm", pa.float64()), ("sync_max_residual_ms", pa.float64()),
        ("fps_declared", pa.float64()), ("width", pa.int64()), ("height", pa.int64()), ("camera_model", pa.string()),
        ("measured_fps", pa.float64()), ("brightness_mean", pa.float64()), ("sharpness_lapvar", pa.float64()),
        ("dropped_rate", pa.float64()), ("frames", pa.int64()),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def with_columns(table: pa.Table, extra: pa.Table | None) -> pa.Table:
    """``table`` with ``extra``'s columns appended, matched on ``session_id`` (null where ``extra`` has
    no row); row order kept. A table without ``session_id`` (a store LeRobot rewrote) is returned as is."""
    if extra is None or "session_id" not in table.column_names:
        return table
    at = {sid: i for i, sid in enumerate(extra.column("session_id").to_pylist())}
    take = pa.array([at.get(sid) for sid in table.column("session_id").to_pylist()], pa.int64())
    for name in extra.column_names:
        if name != "session_id":
            if name in table.column_names:
                table = table.drop_columns([name])
            table = table.append_column(name, extra.column(name).take(take))
    return table


def connect(path: str | Path, extra: pa.Table | None = None) -> Any:
    """A DuckDB connection with the catalog's views over the store at (or under) ``path``; ``extra``:
    columns keyed by ``session_id`` to add to ``episodes`` and ``sessions`` (see ``with_columns``)."""
    import duckdb

    store = open_store(path)
    con = duckdb.connect(":memory:")
    root = str(store.root).replace("'", "''")
    con.register("_episodes", with_columns(store.episodes, extra))
    con.execute(f"CREATE VIEW episodes AS SELECT *, task_id AS task, length AS frames, "
                f"length / {store.fps!r} / 60 AS minutes FROM _episodes")
    con.register("_sessions", with_columns(sessions_table(store), extra))
    con.execute("CREATE VIEW sessions AS SELECT *, task_id AS task, frames / fps_declared / 60 AS minutes FROM _sessions")
    con.execute(f"CREATE VIEW tasks AS SELECT * FROM read_parquet('{root}/{L.TASKS_PATH}')")
    if list((store.root / "data").glob("*/*.parquet")):
        con.execute(f"CREATE VIEW frames AS SELECT * FROM read_parquet('{root}/data/*/*.parquet')")
    return con


def query(path: str | Path, sql: str, extra: pa.Table | None = None) -> tuple[list[str], list[tuple]]:
    """Run ``sql`` against the catalog (with ``extra``'s columns, see ``connect``); returns (column names, rows)."""
    con = connect(path, extra)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
    finally:
        con.close()
