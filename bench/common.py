"""What several benchmarks share: a cached simulated capture, and a model config seeded the same way."""
from __future__ import annotations

import argparse
import shutil
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
