"""A played episode, written as a synthetic episode: source ``play``, lineage to the model, its start and consent.

The frames, body states, progress and continuation are the dream's, the actions the controls that
drove it (the person's keys or the planner's), so the episode is exactly what the player saw. It is
written by the same code as ``egoworld imagine``'s synthetic episodes (``imagine.synthetic``'s
per-frame table, the store writer), one store per saved episode under ``out/`` — each appears
whole or not at all, and a later save never rewrites an earlier one. Like a synthetic episode it
carries its start episode's consent record and points at that session's ``consent.json``, so a
revocation reaches it; an episode whose start has no consent, or a revoked one, is not saved.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from egoworld import runs
from egoworld.imagine.dream import actions_from_controls
from egoworld.imagine.synthetic import LINEAGE_PATH
from egoworld.imagine.synthetic import _table as episode_table

if TYPE_CHECKING:
    from egoworld.play.game import Recording, World

SOURCE = "play"
KIND = "egoworld-play/1"


def _next_id(out: Path, tag: str) -> str:
    taken = {p.name for p in out.iterdir()} if out.is_dir() else set()
    k = 0
    while f"play-{tag}-{k:04d}" in taken:
        k += 1
    return f"play-{tag}-{k:04d}"


def save_episode(world: World, rec: Recording, out: str | Path) -> dict[str, Any]:
    """Write ``rec`` as a one-episode store ``out/play-<model>-NNNN``; returns its path, id and length."""
    from egoworld.dataset.build import SessionInfo, write_store_from_memory
    from egoworld.dataset.store import open_store
    from egoworld.play.game import PlayError
    from egoworld.session import file_sha256
    from egoworld.train.lineage import code_version

    store = open_store(world.data)
    start = world.starts.rows[rec.start]
    ep = int(start["episode_index"])
    row = next(r for r in store.episode_rows() if int(r["episode_index"]) == ep)
    consent = json.loads(row["consent_json"]) if row.get("consent_json") else None
    if consent is None or consent.get("revoked_at"):
        raise PlayError(f"{store.root}: episode {ep} ({row['session_id']}) has {'no consent record' if consent is None else 'a revoked consent'}; "
                        "a played episode inherits its start's consent, so this one is not saved")
    out = Path(out)
    model_sha = runs.model_sha256(world.checkpoint)
    sid = _next_id(out, model_sha.split(":")[1][:8])
    scale = world.starts.hand_scale[rec.start]
    controls = np.stack(rec.controls)
    actions = actions_from_controls(controls, scale)
    grips = np.concatenate([rec.grips0[None], controls[:, [12, 19]]]).clip(0, 1)
    roll = {"frames": np.stack(rec.frames), "state": np.stack(rec.states), "progress": np.asarray(rec.progress),
            "cont": np.asarray(rec.cont)}
    table = episode_table(roll, actions, np.ones(len(actions), bool), grips, scale, store.fps)
    session = next((s for s in store.sessions if s["session_id"] == row["session_id"]), {})
    S = int(world.model.cfg.image_size)
    rig = dict(session.get("rig") or {"fps": store.fps, "camera_model": row.get("camera_model"),
                                      "fov_deg": {"h": row.get("fov_h_deg"), "v": row.get("fov_v_deg")}})
    rig.update({"width": S, "height": S})
    info = SessionInfo(
        session_id=sid, path=str(session.get("path", "")), source=SOURCE, place=str(row["place"]), person=str(row["person"]),
        objects=list(row.get("objects") or []), task=str(row["task_id"]), task_text=str((row.get("tasks") or [row["task_id"]])[0]),
        rig=rig, consent=consent,
        consent_file=str(session.get("consent_file") or Path(session.get("path", "")) / "consent.json"),
        sync={"verdict": "ok", "reason": "played in the world model: generated on the frame grid, no clocks to align",
              "max_abs_drift_ppm": None, "max_residual_ms": None, "min_confidence": None, "max_sigma_ms": None,
              "clocks": {}, "dropped_frames": 0})
    model_record, trained_on = runs.provenance(world.run, world.checkpoint)
    seed = {"role": "seed", "episode_index": ep, "session_id": row["session_id"], "subject_id": row.get("subject_id"),
            "consent_scopes": list(row.get("consent_scopes") or []), "consent_expires_at": row.get("consent_expires_at"),
            "task_id": row["task_id"], "place": row["place"], "person": row["person"],
            "sync_verdict": row.get("sync_verdict"),
            "content_hash": {"data": file_sha256(store.data_file(ep)), "video": file_sha256(store.video_file(ep))}}
    by = {who: rec.by.count(who) for who in ("person", "planner")}
    lineage = {
        "kind": KIND, "synthetic": True, "source": SOURCE,
        "model": model_record,
        "seed_data": str(store.root), "task": world.task,
        "sampling": "latents sampled from the prior" if world.sample else "latent modes of the prior (deterministic)",
        "consent": "the played episode carries its start episode's consent record (meta/episodes, sessions.json, which "
                   "point at the start session's consent.json); `episodes` lists the start and the model's training "
                   "episodes, whose consents the model (and so every frame here) depends on",
        "episodes": [seed] + trained_on,
        "synthetic_episodes": [{"episode_index": 0, "session_id": sid, "seed_episode_index": ep,
                                "seed_session_id": row["session_id"], "start_frame": int(start["frame"]),
                                "context": int(world.model.cfg.context), "length": len(rec.frames), "mode": SOURCE,
                                "controls_by": by, "planner": world.planner.to_dict() if by["planner"] else None,
                                "subject_id": row.get("subject_id"), "consent_scopes": seed["consent_scopes"]}],
        "code": code_version(),
    }
    frames = [np.ascontiguousarray(f) for f in rec.frames]
    res = write_store_from_memory(out / sid, [(info, {"frames": frames, "table": table, "has_labels": True})], store.fps,
                                  source_data=store.root,
                                  info_extra={"synthetic": True, "source": SOURCE, "lineage": LINEAGE_PATH,
                                              "model_sha256": model_sha},
                                  extra_json={LINEAGE_PATH: lineage})
    return {"path": str(res.store), "session_id": sid, "frames": int(res.frames), "controls_by": by}
