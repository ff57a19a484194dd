"""True positions for the state probe: hands from the episode's tracked state, objects from sim truth.

Positions are expressed in the head camera's frame of the same frame (x right, y down, z
forward, metres): what an egocentric latent can know is where things are *relative to the
eyes*; world coordinates differ per place and would charge the probe for the room's origin.

This is one of the two places (with the counterfactual replays) that read a sim session's
``truth/`` — evaluation only, never training. An episode frame i is the session's nominal
frame i (the store keeps rows on the nominal grid), which is also ``truth/frames.parquet``'s
``frame``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from egoworld.model.nets import to_head_frame
from egoworld.state import HEAD_P, HEAD_Q, wrist_p


def session_dirs(ds: Any) -> dict[int, Path]:
    """episode_index → raw session folder (from the store's sessions.json, else DATA/<session_id>)."""
    out: dict[int, Path] = {}
    store = getattr(ds, "store", None)
    if store is None:
        return out
    by_id = {s["session_id"]: Path(s["path"]) for s in getattr(store, "sessions", []) or [] if s.get("path")}
    for row in ds.episodes.to_pylist():
        sid = row["session_id"]
        cand = [by_id.get(sid), Path(store.root).parent / sid]
        for c in cand:
            if c is not None and (c / "truth" / "frames.parquet").exists():
                out[int(row["episode_index"])] = c
                break
    return out


class Targets:
    """Callable: batch → true positions (B, T, D), with ``groups`` naming the columns."""

    def __init__(self, ds: Any):
        self.synthetic = not hasattr(ds, "store")
        self.sessions = {} if self.synthetic else session_dirs(ds)
        self._objects: dict[int, np.ndarray] = {}
        if self.synthetic:
            self.groups = {"object": [0, 1]}
        elif self.sessions:
            self.groups = {"hands": list(range(6)), "object": [6, 7, 8]}
        else:
            self.groups = {"hands": list(range(6))}

    def _object(self, ep: int) -> np.ndarray:
        if ep not in self._objects:
            t = pq.read_table(self.sessions[ep] / "truth" / "frames.parquet", columns=["frame", "object_pos"])
            frames = t.column("frame").to_numpy()
            pos = np.array([p[:3] for p in t.column("object_pos").to_pylist()], dtype=np.float32)  # the task's object
            full = np.full((int(frames.max()) + 1, 3), np.nan, dtype=np.float32)
            full[frames] = pos
            self._objects[ep] = full
        return self._objects[ep]

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        state = batch["state"]
        if self.synthetic:
            return state[..., :2].float()
        state = state.float()
        head_p, head_q = state[..., HEAD_P], state[..., HEAD_Q]
        hands = torch.cat([to_head_frame(state[..., wrist_p(s)], head_p, head_q) for s in range(2)], -1)
        if "object" not in self.groups:
            return hands
        eps = batch["episode_index"]
        eps = eps if eps.dim() == 1 else eps[:, 0]
        obj = torch.zeros(state.shape[:2] + (3,))
        for b, ep in enumerate(eps.tolist()):
            table = self._object(int(ep))
            idx = batch["frame_index"][b].clamp(max=len(table) - 1).numpy()
            obj[b] = torch.from_numpy(table[idx])
        return torch.cat([hands, to_head_frame(obj, head_p, head_q)], -1)
