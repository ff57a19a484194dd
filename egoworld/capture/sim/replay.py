"""Rebuild a recorded sim session's world and continue it from any frame.

Reads the session's ``truth/`` (scene, layout, per-frame states), so this is for evaluation
code, counterfactual replays and closed-loop control — never for the data pipeline itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from egoworld.capture.sim.record import SessionConfig, build_simulator
from egoworld.capture.sim.scene import Layout
from egoworld.capture.sim.simulator import Simulator
from egoworld.capture.sim.tasks import TaskState
from egoworld.session import SessionError


def _truth(path: Path, name: str) -> Path:
    p = path / "truth" / name
    if not p.exists():
        raise SessionError(p, "missing: replay needs a simulated session's ground truth")
    return p


def load_simulator(session: str | Path) -> tuple[Simulator, TaskState]:
    """The simulator of a recorded session, in its initial state."""
    path = Path(session)
    info = json.loads(_truth(path, "task.json").read_text())
    cfg = SessionConfig(**{k: v for k, v in info["config"].items() if k != "objects"})
    xml = _truth(path, "scene.xml").read_text()
    return build_simulator(cfg.place, cfg.person, cfg.task, Layout.from_json(info["layout"]), cfg, xml)


def recorded_states(session: str | Path) -> np.ndarray:
    """The simulator state at every frame (n_frames, state_dim)."""
    t = pq.read_table(_truth(Path(session), "frames.parquet"), columns=["sim_state"])
    return np.asarray(t.column("sim_state").to_pylist())


def recorded_controls(session: str | Path) -> np.ndarray:
    t = pq.read_table(_truth(Path(session), "controls.parquet"), columns=["control"])
    return np.asarray(t.column("control").to_pylist())


def recorded_body(session: str | Path, fps: float, substeps: int) -> dict[str, np.ndarray]:
    """The true body motion at each frame time: head/wrist poses (n+1, ·) and grips (n+1, 2)."""
    t = pq.read_table(_truth(Path(session), "kinematics.parquet"))
    idx = np.arange(0, t.num_rows, substeps)
    out = {}
    for k in ("head_p", "head_q", "wrist_p", "wrist_q", "grip"):
        arr = np.asarray(t.column(k).to_pylist())[idx]
        out[k] = arr.reshape(len(idx), 2, -1) if k.startswith("wrist") else arr
    return out
