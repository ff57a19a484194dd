"""What several benchmarks share: a cached simulated capture, a model config seeded the same way, and the
simulator's step + render timed on a recorded session (the baseline imagination is measured against)."""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TASKS = ["push", "open_drawer", "pick_place", "stack"]


def sim_sessions(args: argparse.Namespace, cache: Path) -> Path:
    """``args.data`` if given, else ``args.sessions`` simulated sessions of ``args.seconds`` at ``args.size``²,
    captured once into ``cache`` (reused while its DONE marker stands)."""
    if args.data:
        return Path(args.data)
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.record import plan_sessions

    root = cache / f"{args.sessions}x{args.seconds:g}s_{args.size}px"
    if not (root / "DONE").exists():
        print(f"capturing {args.sessions} sim sessions × {args.seconds:g} s at {args.size}² into {root} (once) …", flush=True)
        shutil.rmtree(root, ignore_errors=True)
        configs = plan_sessions(args.sessions, 4, 4, TASKS, 0, seconds=args.seconds, width=args.size, height=args.size)
        done, failed = capture_many(root, configs, workers=2, progress=False)
        if failed:
            raise SystemExit(f"capture failed: {failed}")
        (root / "DONE").write_text("ok")
    return root


def model_config(a: argparse.Namespace):
    """The preset ``a.preset`` at ``a.size``², torch threads as ``a.threads`` (0: the preset's), seed 0."""
    import torch

    from egoworld.model import preset

    cfg = preset(a.preset, image_size=a.size)
    if a.threads or cfg.threads:
        torch.set_num_threads(a.threads or cfg.threads)
    torch.manual_seed(0)
    return cfg


@contextmanager
def sim_step_timer(size: int) -> Iterator[Callable[[], float]]:
    """A 3 s pick_place session captured at ``size``² into a temporary folder, its simulator loaded: yields a
    function that replays up to 60 recorded controls from the first state and returns seconds per step +
    render. The folder and the simulator are gone afterwards."""
    from egoworld.capture.sim.record import SessionConfig, capture_session
    from egoworld.capture.sim.replay import load_simulator, recorded_controls, recorded_states

    tmp = Path(tempfile.mkdtemp())
    sim = None
    try:
        scfg = SessionConfig(index=0, seed=0, place=0, person=0, task="pick_place", seconds=3.0, width=size, height=size)
        path = capture_session(tmp, scfg)
        sim, _ = load_simulator(path)
        states, controls = recorded_states(path), recorded_controls(path)

        def seconds_per_step() -> float:
            sim.set_state(states[0])
            sim.render()
            n = min(60, len(controls))
            t0 = time.perf_counter()
            for c in controls[:n]:
                sim.step(c)
                sim.render()
            return (time.perf_counter() - t0) / n

        yield seconds_per_step
    finally:
        if sim is not None:
            sim.close()
        shutil.rmtree(tmp, ignore_errors=True)
