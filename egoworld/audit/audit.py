"""``egoworld audit DATA``: capture standard, sync quality, coverage and rights → audit.json (+ report.html).

Reads the store's metadata and per-frame actions (never video, except a few sample frames for the
report). A session is *flagged* when it fails the capture standard or the spec's sync thresholds;
each flag carries the reasons. Sessions that could not become episodes (sync failed, a different
frame rate) are judged too, from the metrics the store recorded for them.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld.actions import ACTION_DIM, hand_slice
from egoworld.audit.behaviour import behaviour_report, episode_part
from egoworld.audit.rights import lineage_users, live_consent, rights_table
from egoworld.audit.spec import evaluate_capture, evaluate_sync, load_spec
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError
from egoworld.dataset.store import Store, episode_problem, locate_session, open_store, read_runs

THIN_FRACTION = 0.5  # a cell with fewer frames than this share of the mean non-empty cell is "thin"


def _dist(x: list[float]) -> dict:
    a = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=np.float64)
    if not len(a):
        return {"n": 0}
    return {"n": len(a), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max()),
            "mean": float(a.mean())}


def _entropy(counts: dict[str, float]) -> dict:
    v = np.asarray([c for c in counts.values() if c > 0], dtype=np.float64)
    k = len(counts)
    if k <= 1 or v.sum() == 0:
        return {"categories": k, "entropy_bits": 0.0, "normalised": 1.0 if k == 1 else 0.0, "balance_min_over_max": 1.0 if k == 1 else 0.0}
    p = v / v.sum()
    h = float(-(p * np.log2(p)).sum())
    vals = np.asarray(list(counts.values()), dtype=np.float64)
    return {"categories": k, "entropy_bits": round(h, 4), "normalised": round(h / np.log2(k), 4),
            "balance_min_over_max": round(float(vals.min() / vals.max()), 4) if vals.max() > 0 else 0.0}


def motion_part(data_file: Path, ep: int, fps: float) -> dict[str, list[float]]:
    """One episode's head speed (m/s), head turn rate (rad/s) and wrist speed (m/s) over valid actions
    (its own rows: a file may hold several episodes)."""
    try:
        t = pq.read_table(data_file, columns=["action", "action_valid"], filters=[("episode_index", "=", ep)])
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(data_file, f"not a readable parquet file (truncated or corrupt?): {e}") from e
    a = np.asarray(t.column("action").combine_chunks().flatten(), np.float64).reshape(-1, ACTION_DIM)
    a = a[t.column("action_valid").to_numpy(zero_copy_only=False).astype(bool)]
    d = {"head_speed": (np.linalg.norm(a[:, 0:3], axis=1) * fps).tolist(),
         "head_turn": (np.linalg.norm(a[:, 3:6], axis=1) * fps).tolist(), "wrist_speed": []}
    for s in range(2):
        sl = hand_slice(s)
        d["wrist_speed"] += (np.linalg.norm(a[:, sl.start:sl.start + 3], axis=1) * fps).tolist()
    return d


def _motion(store: Store, fps: float, parts: list[dict] | None = None) -> dict:
    """Per task: the ``motion_part``s of its episodes, in episode order."""
    rows = store.episode_rows()
    if parts is None:
        parts = [motion_part(store.data_file(row["episode_index"]), row["episode_index"], fps) for row in rows]
    out: dict[str, dict[str, list[float]]] = {}
    for row, part in zip(rows, parts):
        d = out.setdefault(row["task_id"], {"head_speed": [], "head_turn": [], "wrist_speed": []})
        for k in d:
            d[k] += part[k]
    return out


def _cells(sessions: list[dict], a: str, b: str, fps: float) -> dict:
    """Frames per (a, b) cell over the full cross product of the values seen, with empty/thin named."""
    def vals(s: dict, k: str) -> list[str]:
        v = s[k]
        return list(v) if isinstance(v, list) else [v]

    av_ = sorted({x for s in sessions for x in vals(s, a)})
    bv = sorted({x for s in sessions for x in vals(s, b)})
    grid = {(x, y): 0 for x in av_ for y in bv}
    for s in sessions:
        for x, y in itertools.product(vals(s, a), vals(s, b)):
            grid[(x, y)] += s["_frames"]
    nonzero = [v for v in grid.values() if v > 0]
    mean = float(np.mean(nonzero)) if nonzero else 0.0
    return {"rows": av_, "cols": bv, "frames": [[grid[(x, y)] for y in bv] for x in av_],
            "empty": [f"{a}={x} × {b}={y}" for (x, y), v in grid.items() if v == 0],
            "thin": [f"{a}={x} × {b}={y} ({v / fps / 60:.2f} min)" for (x, y), v in grid.items() if 0 < v < THIN_FRACTION * mean]}


def _checkpoints(found: list[dict], records: list[dict]) -> list[dict]:
    """Checkpoints found now, plus those the subject's revocation records named when they ran (e.g. from
    ``--checkpoints`` folders the audit was not given): the audit never forgets a model it was told of."""
    seen = {c.get("lineage") for c in found}
    out = list(found)
    for r in records:
        for c in r.get("checkpoints_using") or []:
            if isinstance(c, dict) and c.get("lineage") not in seen:
                seen.add(c.get("lineage"))
                out.append(dict(c, from_revocation=r.get("at")))
    return out


def session_facts(root: str, session: dict, episode: dict | None, has_labels: bool, fps: float) -> dict:
    """What the audit reads from one session's files — its live consent and, for an episode, the
    motion, the behaviour part and whether its stored files are whole. The unit of work of a
    cluster audit; a local audit runs the same function in turn. A bad file comes back as
    ``data_error`` / ``consent_error`` (path, problem) for the caller to raise in a fixed order."""
    root_path = Path(root)
    facts: dict = {}
    if episode is not None:
        data, video = Path(episode["data_file"]), Path(episode["video_file"])
        try:
            facts["motion"] = motion_part(data, episode["episode_index"], fps)
        except DatasetError as e:
            facts["data_error"] = (str(e.path), e.problem)
            return facts
        facts["behaviour"] = episode_part(data, episode["episode_index"], has_labels, episode["has_reward"],
                                          locate_session(root_path, session))
        facts["damaged"] = episode_problem(data, video, episode.get("data_rows", episode["length"]),
                                           episode.get("video_frames"), episode.get("data_eps"), episode.get("video_eps"))
    try:
        facts["live"] = live_consent(session, root_path)
    except DatasetError as e:
        facts["consent_error"] = (str(e.path), e.problem)
    return facts


def _gather_facts(store: Store, fps: float, ray: str | None) -> tuple[list[dict], list[dict]]:
    """``session_facts`` of every session (in ``store.sessions`` order) and of every episode (in episode
    order); on Ray one task per session, and a task lost on the cluster is redone here."""
    rows = store.episode_rows()
    episodes = {}
    for row in rows:
        ep = row["episode_index"]
        episodes[ep] = {"episode_index": ep, **store.file_expectations(ep), "length": int(row["length"]),
                        "has_reward": row.get("has_reward", True)}
    jobs = [(str(store.root), s, episodes.get(s.get("episode_index")) if s.get("episode_index") is not None else None,
             store.has_labels, fps) for s in store.sessions]
    if ray is not None:
        from egoworld.cluster import map_tasks

        outcomes = map_tasks(session_facts, jobs, [str(s.get("session_id")) for s in store.sessions], ray)
        facts = [o.value if o.ok else session_facts(*job) for o, job in zip(outcomes, jobs)]
    else:
        facts = [session_facts(*job) for job in jobs]
    by_episode = {job[2]["episode_index"]: f for job, f in zip(jobs, facts) if job[2] is not None}
    for ep in episodes:  # an episode no session record points at (not written by `egoworld episodes`)
        if ep not in by_episode:
            by_episode[ep] = session_facts(str(store.root), {}, episodes[ep], store.has_labels, fps)
    ordered = [by_episode[row["episode_index"]] for row in rows]
    for f in ordered + facts:  # the local audit's order of complaints: data files first, then consent records
        if "data_error" in f:
            raise DatasetError(*f["data_error"])
    for f in facts:
        if "consent_error" in f:
            raise DatasetError(*f["consent_error"])
    return facts, ordered


def run_audit(data: str | Path, spec_path: str | Path | None = None, checkpoints: list[Path] | None = None,
              today: dt.date | None = None, ray: str | None = None) -> dict:
    """The audit as a JSON-able dict (see the module docstring). ``ray``: read the sessions' files as
    Ray tasks, one per session (an address, or "" for Ray's default); the result is the same."""
    spec = load_spec(spec_path)
    store = open_store(data)
    fps = store.fps
    sessions = store.sessions
    facts, episode_facts = _gather_facts(store, fps, ray)
    capture, sync, flagged = [], [], []
    for s in sessions:
        c = evaluate_capture(spec, s)
        y = evaluate_sync(spec, s)
        capture.append({"session_id": s["session_id"], **c})
        sync.append({"session_id": s["session_id"], **y, "max_abs_drift_ppm": s["sync"].get("max_abs_drift_ppm"),
                     "max_residual_ms": s["sync"].get("max_residual_ms")})
        if c["verdict"] != "pass" or y["verdict"] != "ok" or c.get("notes"):
            flagged.append({"session_id": s["session_id"], "capture": c["reasons"], "sync": y["reasons"],
                            "assumed": c.get("notes") or [],
                            "in_store": s.get("episode_index") is not None, "excluded": s.get("excluded")})
    in_store = [dict(s, _frames=int((s.get("capture") or {}).get("frames_nominal") or 0)) for s in sessions
                if s.get("episode_index") is not None]
    by = {}
    for k in ("place", "person", "task", "objects"):
        counts: dict[str, int] = {}
        for s in in_store:
            for v in (s[k] if isinstance(s[k], list) else [s[k]]):
                counts[v] = counts.get(v, 0) + s["_frames"]
        by[k] = {"hours": {v: round(n / fps / 3600, 5) for v, n in sorted(counts.items())},
                 "frames": dict(sorted(counts.items())), **_entropy(counts)}
    coverage = {
        "episodes": len(in_store), "frames": sum(s["_frames"] for s in in_store),
        "hours": round(sum(s["_frames"] for s in in_store) / fps / 3600, 5), "by": by,
        "place_x_task": _cells(in_store, "place", "task", fps) if in_store else {},
        "person_x_task": _cells(in_store, "person", "task", fps) if in_store else {},
        "objects_x_task": _cells(in_store, "objects", "task", fps) if in_store else {},
        "combinations": sorted({f"{s['place']}|{s['person']}|{s['task']}|{'+'.join(s['objects'])}" for s in in_store}),
    }
    motion = _motion(store, fps, [f["motion"] for f in episode_facts])
    coverage["motion"] = {task: {k: _dist(v) for k, v in d.items()} for task, d in motion.items()}
    coverage["behaviour"] = behaviour_report(store, [f["behaviour"] for f in episode_facts])
    rights = rights_table(store, spec, today, facts)
    exports = json.loads((store.root / L.EXPORTS_PATH).read_text())["exports"] if (store.root / L.EXPORTS_PATH).exists() else []
    revocations = json.loads((store.root / L.REVOCATIONS_PATH).read_text())["revocations"] if (store.root / L.REVOCATIONS_PATH).exists() else []
    revoked = [r for r in rights if r["revoked_at"]]
    revoked_ids = {r["session_id"] for r in revoked}
    runs = read_runs(store.root)
    used_by = []
    for subject in sorted({r["subject_id"] for r in revoked if r["subject_id"]}):
        sids = {r["session_id"] for r in revoked if r["subject_id"] == subject}
        used_by.append({"subject_id": subject, "sessions": sorted(sids),
                        "exports": [{"out": e["out"], "use": e["use"], "at": e["at"], "sessions": sorted(sids & set(e["session_ids"]))}
                                    for e in exports if sids & set(e["session_ids"])],
                        "checkpoints": _checkpoints(lineage_users(list(checkpoints or []) + [Path(data)], sids, subject, runs),
                                                    [r for r in revocations if r.get("subject_id") == subject])})
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "as_of": (today or dt.date.today()).isoformat(),
        "store": str(store.root), "spec": {k: v for k, v in spec.items() if k != "_path"}, "spec_file": spec["_path"],
        "summary": {"sessions": len(sessions), "episodes": len(in_store), "hours": coverage["hours"],
                    "flagged": [f["session_id"] for f in flagged],
                    "usable_research": sum(r["usable_research"] for r in rights),
                    "usable_commercial": sum(r["usable_commercial"] for r in rights),
                    "revoked_sessions": sorted(revoked_ids),
                    "shortcut": coverage["behaviour"].get("shortcut", {}).get("flagged", [])},
        "flagged": flagged,
        "capture": capture,
        "sync": {"residual_ms": _dist([s["max_residual_ms"] for s in sync]),
                 "abs_drift_ppm": _dist([s["max_abs_drift_ppm"] for s in sync]),
                 "thresholds": spec["sync"], "over_threshold": [s for s in sync if s["verdict"] != "ok"], "per_session": sync},
        "coverage": coverage,
        "rights": rights,
        "exports": exports,
        "revocations": revocations,
        "runs": runs,
        "revoked_used_by": used_by,
        "_motion_samples": motion,
    }
