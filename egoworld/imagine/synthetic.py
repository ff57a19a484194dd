"""Synthetic episodes: world-model rollouts from real starting states, written as ordinary episodes.

``egoworld imagine RUN --from DATA --episodes N --out SYN`` picks N real starting points (an episode
and a frame of it), filters the model over the frames before it, and rolls the prior forward under
varied actions — the recorded ones, the recorded ones perturbed, smooth random controls, or holding
still. Each rollout becomes an episode of a store with the same LeRobot-v3 layout as the real one
(written by the same store writer), so the episode loader reads it unchanged:

* frames: the decoded rollout (every frame generated, the first one is the model's reconstruction of
  the real start frame it was decoded against); ``observation.state``: the state head; world-frame
  keypoints from the predicted wrist poses and the grip's hand model; ``action``: what drove the
  model; ``next.reward`` / ``next.done`` / ``next.success``: the reward and continuation heads;
* flagged: ``source = "synthetic"`` per episode and ``"synthetic": true`` in info.json;
* lineage (``meta/egoworld/lineage.json``): the model (checkpoint, weights hash, its own lineage) and
  every seed episode (session, content hash, consent), with the start frame and action mode of each
  synthetic episode. A synthetic episode carries its seed's consent record and points at the seed
  session's ``consent.json``, so a revocation of the seed's subject reaches it; the lineage's
  ``episodes`` list (seeds and the model's training episodes) is what ``consent revoke`` searches.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import torch
from scipy.spatial.transform import Rotation as R

from egoworld import runs
from egoworld.actions import CONTROL_HIGH, CONTROL_LOW, action_to_control
from egoworld.body import SIDES, finger_keypoints
from egoworld.imagine.dream import (
    WindowReader,
    actions_from_controls,
    estimate_hand_scale,
    filter_windows,
    select_episodes,
)
from egoworld.model import Noise, WorldModel
from egoworld.model.nets import symexp
from egoworld.session import file_sha256
from egoworld.state import HEAD_Q, STATE_DIM, wrist_p, wrist_q

MODES = ("recorded", "perturbed", "random", "still")
LINEAGE_PATH = "meta/egoworld/lineage.json"
KIND = "egoworld-synthetic/1"


def _smooth_noise(rng: np.random.Generator, n: int, rho: float = 0.85) -> np.ndarray:
    """An AR(1) sequence (n, 20) with unit stationary std: controls that wander rather than jitter."""
    out = np.empty((n, len(CONTROL_LOW)))
    x = rng.standard_normal(len(CONTROL_LOW))
    for t in range(n):
        x = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(len(CONTROL_LOW))
        out[t] = x
    return out


def make_actions(mode: str, recorded: np.ndarray, valid: np.ndarray, grip0: np.ndarray, hand_scale: np.ndarray,
                 mean_action: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Actions (n, 138) and their validity for one rollout of ``n = len(recorded)`` steps.

    recorded: what the seed episode really did; perturbed: that, plus smooth noise of 30 % of each
    control's range; random: smooth noise over the range; still: no motion, the grips held.
    """
    n = len(recorded)
    half = (CONTROL_HIGH - CONTROL_LOW) / 2
    mid = (CONTROL_HIGH + CONTROL_LOW) / 2
    if mode == "recorded":
        act = recorded.astype(np.float64).copy()
        act[~valid] = mean_action  # what the model sees for an unknown action (normalised to 0)
        return act, valid.copy()
    if mode == "perturbed":
        base = action_to_control(recorded)
        base[~valid] = mid
        ctrl = base + 0.3 * half * _smooth_noise(rng, n)
    elif mode == "random":
        ctrl = mid + 0.6 * half * _smooth_noise(rng, n)
    elif mode == "still":
        ctrl = np.zeros((n, len(CONTROL_LOW)))
        ctrl[:, [12, 19]] = grip0
    else:
        raise ValueError(f"unknown action mode {mode!r}; known: {', '.join(MODES)}")
    return actions_from_controls(ctrl, hand_scale), np.ones(n, bool)


def world_keypoints(state: np.ndarray, grips: np.ndarray, hand_scale: np.ndarray) -> np.ndarray:
    """(L, 2, 21, 3) world keypoints from predicted wrist poses in ``state`` (L, 21) and grips (L, 2)."""
    out = np.zeros((len(state), 2, 21, 3))
    for s, side in enumerate(SIDES):
        p, q = state[:, wrist_p(s)], state[:, wrist_q(s)]
        kp = finger_keypoints(grips[:, s], hand_scale[s], side)  # (L, 21, 3) in the wrist frame
        rot = R.from_quat(q, scalar_first=True).as_matrix()  # (L, 3, 3)
        out[:, s] = p[:, None] + np.einsum("lij,lkj->lki", rot, kp)
    return out


def _normalise_quats(state: np.ndarray) -> np.ndarray:
    state = state.copy()
    for cols in (HEAD_Q, wrist_q(0), wrist_q(1)):
        q = state[:, cols]
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        state[:, cols] = np.where(norm > 1e-6, q / np.maximum(norm, 1e-6), np.array([1.0, 0, 0, 0]))
    return state


@torch.no_grad()
def rollout(model: WorldModel, images: np.ndarray, ctx_action: np.ndarray, ctx_valid: np.ndarray, actions: np.ndarray,
            generator: torch.Generator, ctx_state: np.ndarray | None = None,
            ctx_objects: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Filter ``images`` (C, 3, S, S) [with their body states (C, 21) and tracked objects (C, 6)], then imagine
    ``len(actions)`` steps: frames, state, progress, continuation."""
    posts = filter_windows(model, torch.from_numpy(images[None]), torch.from_numpy(ctx_action[None].astype(np.float32)),
                           torch.from_numpy(ctx_valid[None]),
                           None if ctx_state is None else torch.from_numpy(ctx_state[None].astype(np.float32)),
                           objects=None if ctx_objects is None else torch.from_numpy(ctx_objects[None].astype(np.float32)))
    last = posts.last()
    imag = model.imagine(last, torch.from_numpy(actions[None].astype(np.float32)), sample=True, noise=Noise(generator))
    feat = torch.cat([last.feat()[:, None], imag.feat()], 1)  # (1, L, F)
    ref = model.reference(torch.from_numpy(images[-1:]), last.feat())
    rot = model.head_rotation(torch.from_numpy(actions[None].astype(np.float32)))  # the head's turn since the reference
    if rot is not None:
        rot = torch.cat([torch.eye(3).expand(1, 1, 3, 3), rot], 1)
    frames = (model.decode(feat, ref, rot).clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(0, 2, 3, 1).numpy()
    return {"frames": frames, "state": symexp(model.state_head(feat))[0].double().numpy(),
            "progress": model.reward(feat)[0].numpy(), "cont": model.cont(feat)[0].numpy()}


def _table(roll: dict[str, np.ndarray], actions: np.ndarray, valid: np.ndarray, grips: np.ndarray,
           hand_scale: np.ndarray, fps: float) -> pa.Table:
    """The per-frame columns ``build_episode`` makes (no index columns: the store writer adds them)."""
    L = len(roll["frames"])
    state = _normalise_quats(roll["state"])
    kp = world_keypoints(state, grips, hand_scale)
    act = np.zeros((L, actions.shape[1]), np.float32)
    act[:-1] = actions
    act_valid = np.zeros(L, bool)
    act_valid[:-1] = valid
    done = roll["cont"] < 0.5

    def f32_list(x: np.ndarray, w: int) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(x, np.float32).reshape(-1)), w)

    return pa.table({
        "observation.state": f32_list(state, STATE_DIM),
        "observation.left_keypoints": f32_list(kp[:, 0], 63),
        "observation.right_keypoints": f32_list(kp[:, 1], 63),
        "action": f32_list(act, act.shape[1]),
        "action_valid": act_valid,
        "head_valid": np.ones(L, bool), "left_hand_valid": np.ones(L, bool), "right_hand_valid": np.ones(L, bool),
        "frame_dropped": np.zeros(L, bool),
        "sync_residual": np.zeros(L, np.float32),
        "t_video_ns": np.round(np.arange(L) * 1e9 / fps).astype(np.int64),
        # the heads were trained on next.reward[t] = progress[t+1] from the feature of frame t
        "next.reward": roll["progress"].astype(np.float32),
        "next.done": done,
        "next.success": done.copy(),
    })


def _grips(control_or_action: np.ndarray) -> np.ndarray:
    return action_to_control(control_or_action)[..., [12, 19]].clip(0, 1)


def export_synthetic(run: str | Path, data: str | Path, out: str | Path, episodes: int = 16, length: int = 64,
                     context: int | None = None, task: str | None = None, split: str = "train",
                     modes: Sequence[str] = MODES, seed: int = 0, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``episodes`` synthetic episodes of ``length`` frames to the store ``out``; returns a summary."""
    from egoworld.dataset.build import SessionInfo, write_store_from_memory
    from egoworld.train.lineage import code_version

    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"unknown action modes {bad}; known: {', '.join(MODES)}")
    t0 = time.time()
    ckpt = runs.resolve(run)
    model, mcfg = runs.load_model(ckpt)
    C = int(context or mcfg.context)
    store, rows = select_episodes(data, task, split)
    sessions = {s["session_id"]: s for s in store.sessions}

    def usable(r: dict) -> bool:
        consent = json.loads(r["consent_json"]) if r.get("consent_json") else None
        return r["length"] >= C + length - 1 and consent is not None and not consent.get("revoked_at")

    eligible = [r for r in rows if usable(r)]
    if not eligible:
        raise ValueError(f"{store.root}: no {split} episode{f' of {task}' if task else ''} with a consent record, not "
                         f"revoked, and {C + length - 1} frames (context {C} + length {length} - 1); try a shorter --length")
    rng = np.random.default_rng([seed, 23])
    gen = torch.Generator().manual_seed(seed)
    S = mcfg.image_size
    reader = WindowReader(store, S)
    mean_action = model.action_mean.double().numpy()
    model_sha = runs.model_sha256(ckpt)
    tag = model_sha.split(":")[1][:8]
    written: list[tuple[Any, dict]] = []
    synth_rows, seeds = [], {}
    for k in range(episodes):
        row = eligible[int(rng.integers(len(eligible)))]
        mode = modes[k % len(modes)]
        ep, n = int(row["episode_index"]), int(row["length"])
        f = int(rng.integers(C - 1, n - length + 1))
        cols = reader.episode(ep)
        scale = estimate_hand_scale(cols["action"], cols["action_valid"])
        images = reader.frames(ep, f - C + 1, f + 1)
        rec, rec_valid = cols["action"][f:f + length - 1], cols["action_valid"][f:f + length - 1]
        grip0 = _grips(cols["action"][max(f - 1, 0)])
        actions, valid = make_actions(mode, rec, rec_valid, grip0, scale, mean_action, rng)
        roll = rollout(model, images, cols["action"][f - C + 1:f + 1], cols["action_valid"][f - C + 1:f + 1], actions, gen,
                       cols["state"][f - C + 1:f + 1], cols["objects"][f - C + 1:f + 1])
        grips = np.concatenate([grip0[None], _grips(actions)])
        table = _table(roll, actions, valid, grips, scale, store.fps)
        sid = f"syn-{tag}-{k:04d}"
        seed_session = sessions.get(row["session_id"], {})
        consent = json.loads(row["consent_json"])
        rig = dict(seed_session.get("rig") or {"fps": store.fps, "camera_model": row.get("camera_model"),
                                               "fov_deg": {"h": row.get("fov_h_deg"), "v": row.get("fov_v_deg")}})
        rig.update({"width": S, "height": S})
        info = SessionInfo(
            session_id=sid, path=str(seed_session.get("path", "")), source="synthetic", place=str(row["place"]),
            person=str(row["person"]), objects=list(row.get("objects") or []), task=str(row["task_id"]),
            task_text=str((row.get("tasks") or [row["task_id"]])[0]), rig=rig, consent=consent,
            consent_file=str(seed_session.get("consent_file") or Path(seed_session.get("path", "")) / "consent.json"),
            sync={"verdict": "ok", "reason": "synthetic: generated on the frame grid, no clocks to align",
                  "max_abs_drift_ppm": None, "max_residual_ms": None, "min_confidence": None, "max_sigma_ms": None,
                  "clocks": {}, "dropped_frames": 0})
        written.append((info, {"frames": list(roll["frames"]), "table": table, "has_labels": True}))
        if ep not in seeds:
            seeds[ep] = {"role": "seed", "episode_index": ep, "session_id": row["session_id"],
                         "subject_id": row.get("subject_id"), "consent_scopes": list(row.get("consent_scopes") or []),
                         "consent_expires_at": row.get("consent_expires_at"), "task_id": row["task_id"],
                         "place": row["place"], "person": row["person"], "sync_verdict": row.get("sync_verdict"),
                         "content_hash": {"data": file_sha256(store.data_file(ep)),
                                          "video": file_sha256(store.video_file(ep))}}
        synth_rows.append({"episode_index": k, "session_id": sid, "seed_episode_index": ep,
                           "seed_session_id": row["session_id"], "start_frame": f, "context": C, "length": length,
                           "mode": mode, "subject_id": row.get("subject_id"), "consent_scopes": seeds[ep]["consent_scopes"]})
    reader.close()
    model_record, trained_on = runs.provenance(run, ckpt)
    lineage = {
        "kind": KIND, "synthetic": True, "model": model_record,
        "seed_data": str(store.root), "seed_split": split, "task": task, "modes": list(modes), "seed": seed,
        "sampling": "latents sampled from the prior (a torch generator seeded with `seed`)",
        "consent": "each synthetic episode carries its seed episode's consent record (meta/episodes, sessions.json, "
                   "which point at the seed session's consent.json); `episodes` lists the seeds and the model's "
                   "training episodes, whose consents the model (and so every frame here) depends on",
        "episodes": list(seeds.values()) + trained_on,
        "synthetic_episodes": synth_rows,
        "code": code_version(),
    }
    res = write_store_from_memory(out, written, store.fps, source_data=store.root,
                                  info_extra={"synthetic": True, "lineage": LINEAGE_PATH, "model_sha256": model_sha},
                                  extra_json={LINEAGE_PATH: lineage})
    echo(f"{res.episodes} synthetic episodes from {len(seeds)} seed episodes in {time.time() - t0:.0f} s")
    return {"out": str(res.store), "episodes": res.episodes, "frames": res.frames, "lineage": LINEAGE_PATH,
            "seeds": len(seeds), "model_sha256": model_sha}
