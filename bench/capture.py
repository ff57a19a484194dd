"""Frames captured per second by `capture sim`, against a render-only baseline measured in the same run.

    python bench/capture.py [--seconds 10] [--size 256] [--sessions 2]

The baseline renders the same scenes from the same recorded states with nothing else (no
physics, no person, no encoding, no sensor sampling): the ratio says what the rest costs.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import egoworld.capture.sim  # noqa: F401
from egoworld.capture.sim.record import SessionConfig, capture_session
from egoworld.capture.sim.replay import load_simulator, recorded_states


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sessions", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        frames, t_capture, paths = 0, 0.0, []
        for i, task in zip(range(a.sessions), ["pick_place", "open_drawer", "push", "stack"] * 4):
            cfg = SessionConfig(index=i, seed=0, place=i, person=i, task=task, seconds=a.seconds, width=a.size, height=a.size)
            t0 = time.perf_counter()
            paths.append(capture_session(tmp, cfg))
            t_capture += time.perf_counter() - t0
            frames += int(round(a.seconds * cfg.fps))
        t_render = 0.0
        for p in paths:
            sim, _ = load_simulator(p)
            states = recorded_states(p)
            sim.set_state(states[0])
            sim.render()  # context creation is not part of the per-frame cost
            t0 = time.perf_counter()
            for s in states:
                sim.set_state(s)
                sim.render()
            t_render += time.perf_counter() - t0
        cap_fps, ren_fps = frames / t_capture, frames / t_render
        print(f"sessions {a.sessions} x {a.seconds:.0f} s at {a.size}x{a.size}, 30 fps, one process")
        print(f"capture sim:  {cap_fps:7.1f} frames/s  ({cap_fps / 30:.2f}x real time)")
        print(f"render only:  {ren_fps:7.1f} frames/s  (baseline, same states)")
        print(f"ratio capture/render-only: {cap_fps / ren_fps:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
