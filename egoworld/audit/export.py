"""``egoworld export DATA --use commercial --out OUT``: a LeRobot-v3 store of the cleared episodes only.

Every episode is judged by ``rights.clearance`` (consent present, scope granted, not expired, not
revoked, capture standard passed, sync ok); only cleared ones are copied, re-indexed so the export
is a complete LeRobot dataset of its own (episode i is row i, index 0..N-1, tasks and stats of the
subset). The export is assembled in a temporary sibling folder, checked with the LeRobot layout
check, and only then renamed to OUT; the source store records the export (meta/egoworld/exports.json)
so that a later revocation can name it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld._atomic import replace_dir, temp_dir_beside, write_json, write_parquet
from egoworld.actions import ACTION_DIM
from egoworld.audit.rights import USES, clearance, live_consent
from egoworld.audit.spec import load_spec
from egoworld.dataset import layout as L
from egoworld.dataset.build import (
    DatasetError,
    _episode_row_stats,
    _image_stats,
    episodes_table,
)
from egoworld.dataset.check import check_store
from egoworld.dataset.store import open_store
from egoworld.session import file_sha256


def decide(data: str | Path, use: str, spec_path: str | Path | None = None, today: dt.date | None = None) -> list[dict]:
    """Per session of the store: {session_id, episode_index, cleared, reasons}."""
    spec = load_spec(spec_path)
    store = open_store(data)
    out = []
    for s in store.sessions:
        live = live_consent(s, store.root)
        ok, reasons = clearance(s, use, spec, today, live=live)
        out.append({"session_id": s["session_id"], "episode_index": s.get("episode_index"), "cleared": ok,
                    "reasons": reasons, "subject_id": (live.record or s.get("consent") or {}).get("subject_id"),
                    "consent": live.record, "folder": str(live.path.parent) if live.path else None})
    return out


def check_video(path: Path, frames: int) -> None:
    """Decode a stored video end to end: a truncated or corrupt file is a ``DatasetError`` naming it
    (the export must not hand out a file that LeRobot cannot read)."""
    try:
        with av.open(str(path)) as c:
            got = sum(1 for _ in c.decode(video=0))
    except (av.error.FFmpegError, OSError) as e:
        raise DatasetError(path, f"video is truncated or corrupt ({e}); rebuild the store (`egoworld episodes DATA`)") from e
    if got != frames:
        raise DatasetError(path, f"video has {got} decodable frames, meta/episodes says {frames}; rebuild the store "
                                 "(`egoworld episodes DATA`)")


def _unrooted(text: str, data: Path) -> str:
    """``text`` with the DATA folder's path taken out (paths in it then read from DATA)."""
    for root in {str(data.resolve()), str(data.absolute())}:
        text = text.replace(root + os.sep, "")
    return text


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def export(data: str | Path, use: str, out: str | Path, spec_path: str | Path | None = None,
           today: dt.date | None = None, force: bool = False) -> dict:
    """Write the episodes cleared for ``use`` to ``out``; returns the export record (included, excluded+why)."""
    if use not in USES:
        raise ValueError(f"--use must be one of {USES}, got {use!r}")
    out = Path(out)
    if out.exists() and not force:
        raise DatasetError(out, "already exists; choose another --out or pass --force to replace it")
    spec = load_spec(spec_path)
    store = open_store(data)
    decisions = decide(store.root, use, spec_path, today)
    chosen = sorted((d["episode_index"], d) for d in decisions if d["cleared"])
    rows = store.episode_rows()
    by_session = {s["session_id"]: s for s in store.sessions}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(out)
    try:
        tasks = sorted({rows[e]["tasks"][0] for e, _ in chosen})
        task_index = {t: i for i, t in enumerate(tasks)}
        feats = store.info["features"]
        tables, ep_rows, sessions, start = [], [], [], 0
        for k, (old, d) in enumerate(chosen):
            row = dict(rows[old])
            src = store.data_file(old)
            try:
                t = pq.read_table(src)
            except (pa.ArrowException, OSError) as e:
                raise DatasetError(src, f"not a readable parquet file (truncated or corrupt?): {e}") from e
            n = t.num_rows
            if n != row["length"]:
                raise DatasetError(src, f"has {n} rows, meta/episodes says {row['length']}; rebuild the store")
            vsrc = store.video_file(old)
            if not vsrc.exists():
                raise DatasetError(vsrc, "video file is missing; rebuild the store (`egoworld episodes DATA`)")
            check_video(vsrc, n)
            repl = {"episode_index": np.full(n, k, np.int64), "index": np.arange(start, start + n, dtype=np.int64),
                    "task_index": np.full(n, task_index[row["tasks"][0]], np.int64)}
            for name, v in repl.items():
                t = t.set_column(t.column_names.index(name), name, pa.array(v))
            write_parquet(tmp / L.data_path(k), t)
            tables.append(t)
            _link_or_copy(vsrc, tmp / L.video_path(k, store.video_key))
            chunk, file = L.data_file(k)
            vk = store.video_key
            row.update({"episode_index": k, "data/chunk_index": chunk, "data/file_index": file, "dataset_from_index": start,
                        "dataset_to_index": start + n, f"videos/{vk}/chunk_index": chunk, f"videos/{vk}/file_index": file})
            # the export carries the consent it was cleared on (the live record), not the build-time copy
            c = d["consent"]
            row.update({"subject_id": c.get("subject_id"), "consent_scopes": list(c.get("scopes") or []),
                        "consent_expires_at": None if c.get("expires_at") is None else str(c["expires_at"]),
                        "consent_revoked_at": None, "consent_present": True, "consent_json": json.dumps(c)})
            ep_rows.append(row)
            s = dict(by_session[d["session_id"]])
            folder = Path(d["folder"]).resolve()
            # no absolute paths in what is shipped: the folder relative to the export (opening the
            # export here finds it through that) and the content hash to verify it by
            for k_ in ("path", "consent_file"):
                s.pop(k_, None)
            s.update({"episode_index": k, "consent": c, "path_in_store": os.path.relpath(folder, out.resolve())})
            sessions.append(s)
            start += n
        write_parquet(tmp / L.EPISODES_PATH.format(chunk_index=0, file_index=0),
                      episodes_table(ep_rows, store.video_key) if ep_rows else store.episodes.slice(0, 0))
        L.write_tasks(tmp / L.TASKS_PATH, tasks)
        stats = {}
        if tables:
            whole = pa.concat_tables(tables)
            act = np.asarray(whole.column("action").combine_chunks().flatten(), np.float64).reshape(-1, ACTION_DIM)
            valid = whole.column("action_valid").to_numpy(zero_copy_only=False).astype(bool)
            stats = _episode_row_stats(tables, feats, act[valid])
            stats[store.video_key] = _image_stats(tmp, len(tables))
        write_json(tmp / L.STATS_PATH, stats)
        info = dict(store.info)
        # where the copy came from, by name (the source's own local path stays out of what is shipped)
        info["egoworld"] = {**(info.get("egoworld") or {}), "source_data": store.root.parent.name + "/" + store.root.name}
        info.update({"total_episodes": len(ep_rows), "total_frames": start, "total_tasks": len(tasks),
                     "splits": {"train": f"0:{len(ep_rows)}"}})
        write_json(tmp / L.INFO_PATH, info)
        write_json(tmp / L.SESSIONS_PATH, {"sessions": sessions})
        if (store.root / L.SPLITS_PATH).exists():
            shutil.copy2(store.root / L.SPLITS_PATH, tmp / L.SPLITS_PATH)
        # names and hashes, not this machine's paths: the record travels with the export
        spec_file = Path(spec["_path"])
        record = {"use": use, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "as_of": (today or dt.date.today()).isoformat(),
                  "spec": {"name": spec.get("name", spec_file.stem), "file": spec_file.name,
                           "sha256": file_sha256(spec_file) if spec_file.is_file() else None},
                  "source": {"store": store.root.parent.name + "/" + store.root.name,
                             "info_sha256": file_sha256(store.root / L.INFO_PATH)},
                  "out": out.name, "episodes": len(ep_rows), "frames": start,
                  "session_ids": [d["session_id"] for _, d in chosen],
                  "subjects": sorted({d["subject_id"] for _, d in chosen if d["subject_id"]}),
                  "excluded": [{"session_id": d["session_id"], "reasons": [_unrooted(r, store.root.parent) for r in d["reasons"]]}
                               for d in decisions if not d["cleared"]]}
        write_json(tmp / L.EXPORT_RECORD_PATH, record)
        if ep_rows:
            problems = check_store(tmp)
            if problems:
                raise DatasetError(out, "export fails the LeRobot layout check: " + "; ".join(problems[:5]))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log = store.root / L.EXPORTS_PATH
    doc = json.loads(log.read_text()) if log.exists() else {"exports": []}
    # the store's own trail is local: it names the copy by its path here, so a revocation finds it
    doc["exports"].append({**{k: record[k] for k in ("use", "at", "as_of", "episodes", "session_ids", "subjects")},
                           "out": str(out.resolve())})
    write_json(log, doc)
    return record
