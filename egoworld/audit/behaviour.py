"""What the people in a store did: action coverage, the play / failure / task mix, and shortcuts.

A world model predicts confidently and wrongly where its data shows nothing, and a planner searches
exactly there. So the audit measures how much of the control space the store covers (each wrist's
velocity in the head camera's frame, over the box a planner samples from, and the grip), how
close hands came to the task's objects (simulated sessions: their truth, evaluation only), what
share of frames was task, play or failure (sessions that recorded their behaviour mix), and
whether a *nuisance* signal — how far the hands are from the eyes, how late in the episode —
predicts the reward label as well as the label's own rise: a model trained on such data learns
"hands pulled in" or "late in the clip" as "task done".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from egoworld.actions import ACTION_DIM, CONTROL_HIGH, action_to_control, hand_slice
from egoworld.dataset.store import Store, locate_session
from egoworld.state import HEAD_P, wrist_p

BINS = 7  # per axis of a wrist's velocity (7³ cells per hand) and for the grip
VELOCITY_BOX = 0.5 * CONTROL_HIGH[6]  # m/frame: the planner's default box (half the wrist speed limit)
MIN_FRAMES = 20  # a cell counts as covered with at least this many frames
SHORTCUT_RHO = 0.5  # |Spearman ρ| of a nuisance signal with the reward label that flags a shortcut
REACH_BINS_M = (0.0, 0.05, 0.10, 0.20, 0.40, np.inf)


def _episode_arrays(data_file: Path, ep: int, has_labels: bool) -> dict[str, np.ndarray]:
    cols = ["action", "action_valid", "observation.state", "frame_index"] + (["next.reward"] if has_labels else [])
    t = pq.read_table(data_file, columns=cols, filters=[("episode_index", "=", ep)])
    out = {"action": np.asarray(t.column("action").combine_chunks().flatten(), np.float64).reshape(-1, ACTION_DIM),
           "valid": t.column("action_valid").to_numpy(zero_copy_only=False).astype(bool),
           "state": np.asarray(t.column("observation.state").combine_chunks().flatten(), np.float64).reshape(t.num_rows, -1),
           "frame": t.column("frame_index").to_numpy()}
    if "next.reward" in t.column_names:
        out["reward"] = t.column("next.reward").to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def _coverage(counts: np.ndarray) -> dict[str, Any]:
    return {"cells": int(counts.size), "covered": int((counts >= MIN_FRAMES).sum()),
            "share": round(float((counts >= MIN_FRAMES).mean()), 4)}


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 10 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None
    return round(float(spearmanr(x[ok], y[ok]).statistic), 3)


def shortcut_check(reward: np.ndarray, eye_distance: np.ndarray, episode_time: np.ndarray) -> dict[str, Any]:
    """Does a nuisance signal (per frame: the nearest hand's distance from the eyes, the share of the episode
    gone) predict the reward label? Flagged at |Spearman ρ| ≥ ``SHORTCUT_RHO``."""
    nuisance = {"hand_distance_from_eyes": _spearman(eye_distance, reward), "episode_time": _spearman(episode_time, reward)}
    flagged = [k for k, v in nuisance.items() if v is not None and abs(v) >= SHORTCUT_RHO]
    return {"rho_with_reward": nuisance, "threshold": SHORTCUT_RHO, "flagged": flagged,
            "why": ("a signal that is not the task predicts the reward label (|ρ| ≥ threshold): a model can learn it "
                    "in place of the task — record play, failures and withdrawals without success"
                    if flagged else "no nuisance signal predicts the reward label")}


def _session_dirs(store: Store) -> dict[str, Path]:
    out = {}
    for s in store.sessions:
        p = locate_session(store.root, s)
        if p is not None:
            out[s.get("session_id")] = p
    return out


def episode_part(data_file: Path, ep: int, has_labels: bool, has_reward: bool, sdir: Path | None) -> dict[str, Any]:
    """One episode's share of the report (counts and per-frame signals): the part a cluster task computes."""
    vel = np.zeros((2, BINS, BINS, BINS), np.int64)
    grip = np.zeros((2, BINS), np.int64)
    reach = np.zeros(len(REACH_BINS_M) - 1, np.int64)
    part: dict[str, Any] = {"vel": vel, "grip": grip, "reach": reach, "mix": {}, "unrecorded": 0, "shortcut": None}
    edges = np.linspace(-VELOCITY_BOX, VELOCITY_BOX, BINS + 1)[1:-1]
    a = _episode_arrays(data_file, ep, has_labels)
    act = a["action"][a["valid"]]
    ctrl = action_to_control(act)
    for s in range(2):
        v = act[:, hand_slice(s).start: hand_slice(s).start + 3]
        idx = np.digitize(v, edges)
        np.add.at(vel[s], (idx[:, 0], idx[:, 1], idx[:, 2]), 1)
        np.add.at(grip[s], np.clip((ctrl[:, 12 + 7 * s] * BINS).astype(int), 0, BINS - 1), 1)
    st = a["state"]
    hands = np.stack([st[:, wrist_p(0)], st[:, wrist_p(1)]], 1)
    d_eye = np.linalg.norm(hands - st[:, None, HEAD_P], axis=-1).min(1)
    n = len(st)
    if "reward" in a and has_reward:
        part["shortcut"] = (a["reward"], d_eye, a["frame"] / max(n - 1, 1))
    if sdir is None:
        part["unrecorded"] = 1
        return part
    try:
        meta = json.loads((sdir / "session.json").read_text())
    except (OSError, ValueError):
        meta = {}
    b = meta.get("behaviour")
    if b and isinstance(b.get("frames"), dict):
        for k, v in b["frames"].items():
            part["mix"][k] = part["mix"].get(k, 0) + int(v)
    else:
        part["unrecorded"] = 1
    truth = sdir / "truth" / "frames.parquet"
    if truth.exists():
        t = pq.read_table(truth, columns=["frame", "object_pos"])
        objs = t.column("object_pos").to_pylist()
        if objs and objs[0]:
            frames = t.column("frame").to_numpy()
            table = np.full((int(frames.max()) + 1, len(objs[0]) // 3, 3), np.nan)
            table[frames] = np.asarray(objs, np.float64).reshape(len(objs), -1, 3)
            at = table[np.clip(a["frame"], 0, len(table) - 1)]  # (n, objects, 3)
            d = np.linalg.norm(hands[:, :, None] - at[:, None], axis=-1).reshape(n, -1)
            d = d[np.isfinite(d).any(1)]
            d = np.nanmin(d, axis=1)
            np.add.at(reach, np.searchsorted(REACH_BINS_M, d, side="right") - 1, 1)
    return part


def behaviour_report(store: Store, parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Action coverage, behaviour mix and the shortcut check for one store (see the module docstring).

    ``parts``: the stored episodes' ``episode_part``s in episode order, when computed elsewhere (a cluster)."""
    if parts is None:
        dirs = _session_dirs(store)
        parts = [episode_part(store.data_file(row["episode_index"]), row["episode_index"], store.has_labels,
                              row.get("has_reward", True), dirs.get(row.get("session_id"))) for row in store.episode_rows()]
    vel = sum((p["vel"] for p in parts), np.zeros((2, BINS, BINS, BINS), np.int64))
    grip = sum((p["grip"] for p in parts), np.zeros((2, BINS), np.int64))
    reach = sum((p["reach"] for p in parts), np.zeros(len(REACH_BINS_M) - 1, np.int64))
    mix_frames: dict[str, int] = {}
    for p in parts:
        for k, v in p["mix"].items():
            mix_frames[k] = mix_frames.get(k, 0) + v
    unrecorded = sum(p["unrecorded"] for p in parts)
    signals = [p["shortcut"] for p in parts if p["shortcut"] is not None]
    out: dict[str, Any] = {
        "control": {"wrist_velocity": {"box_m_per_frame": float(VELOCITY_BOX), "bins_per_axis": BINS, "min_frames": MIN_FRAMES,
                                       "left": _coverage(vel[0]), "right": _coverage(vel[1])},
                    "grip": {"left": _coverage(grip[0]), "right": _coverage(grip[1])}},
    }
    if reach.sum():
        labels = [f"{lo * 100:.0f}-{hi * 100:.0f} cm" if np.isfinite(hi) else f">{lo * 100:.0f} cm"
                  for lo, hi in zip(REACH_BINS_M[:-1], REACH_BINS_M[1:])]
        out["hand_to_object"] = {"from": "simulator truth (evaluation only)",
                                 "share_of_frames": {k: round(float(v / reach.sum()), 4) for k, v in zip(labels, reach)}}
    total = sum(mix_frames.values())
    play = {"reach", "poke", "knots", "idle", "free_play"}
    failure = {"withdraw"}
    out["mix"] = {"frames": dict(sorted(mix_frames.items())), "episodes_without_record": unrecorded}
    if total:
        sh = lambda names: round(sum(v for k, v in mix_frames.items() if k in names) / total, 4)  # noqa: E731
        out["mix"]["share"] = {"task": sh({"task"}), "play": sh(play), "failure": sh(failure),
                               "other": sh(set(mix_frames) - play - failure - {"task"})}
    if signals:
        out["shortcut"] = shortcut_check(*(np.concatenate(x) for x in zip(*signals)))
    return out


__all__ = ["behaviour_report", "episode_part", "shortcut_check"]
