"""CPU-seconds per hour of 30 fps video, stage by stage: the numbers a cluster plan is made of.

    python bench/stages.py                    # 4 simulated sessions × 20 s at 256² (captured once, cached)
    python bench/stages.py --size 128 --sessions 8
    python bench/stages.py --data DATA        # any folder of 30 fps sessions

Each stage runs in this one process, OpenCV and torch on one thread, and is charged the CPU time
of the process (``time.process_time``: all its threads, none of the machine's other jobs), so the
figures hold on a busy machine and add up across cores: decode (every frame to RGB, PyAV), sync
(``sync_session``, which decodes what it needs itself), episode write (``build_store``: decode,
re-encode with a short GOP, tables, stats), audit (``run_audit``) and training (tiny preset, 64²,
frames seen per CPU-second). With Ray installed, the driver's CPU time of ``episodes --ray`` is
the merge — the part of the episode write that stays on one machine (an upper bound: it includes
Ray's own driver threads). Storage per hour is the raw sessions' and the store's bytes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import sim_sessions  # noqa: E402  (bench/ is the script's folder)

CACHE = Path(tempfile.gettempdir()) / "egoworld_bench_stages"
HOUR = 3600.0


def _sessions(args: argparse.Namespace) -> Path:
    return sim_sessions(args, CACHE)


def _cpu(fn) -> float:
    c = time.process_time()
    fn()
    return time.process_time() - c


def _bytes(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a folder of sessions (default: simulated ones, cached)")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=12)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from egoworld.audit.audit import run_audit
    from egoworld.dataset.build import build_store
    from egoworld.model.config import preset
    from egoworld.session import find_sessions, open_session
    from egoworld.sync.pipeline import sync_session
    from egoworld.train.loop import train
    from egoworld.video import iter_frames

    src = _sessions(args)
    work = Path(tempfile.mkdtemp(prefix="egoworld_stages_"))
    data = work / "data"
    shutil.copytree(src, data, ignore=shutil.ignore_patterns("aligned", "episodes", "DONE"))
    sessions = find_sessions(data)
    rows: list[tuple[str, float, str]] = []
    counts: list[float] = []
    try:
        def decode() -> None:
            for p in sessions:
                s = open_session(p)
                counts.append(sum(1 for _ in iter_frames(s.video_path)) / float(s.meta["rig"]["fps"]))

        cpu = _cpu(decode)
        video_s = sum(counts)
        rows.append(("decode (PyAV → RGB)", cpu, "every frame"))
        cpu = _cpu(lambda: [sync_session(p, data / "aligned") for p in sessions])
        rows.append(("sync", cpu, "offset + drift per clock, aligned table"))
        cpu = _cpu(lambda: build_store(data, workers=1))
        rows.append(("episode write", cpu, "decode + H.264 re-encode (GOP 16) + tables"))
        cpu = _cpu(lambda: run_audit(data))
        rows.append(("audit", cpu, "metadata, actions, consent, file checks"))
        try:
            import ray
        except ImportError:
            ray = None
        if ray is not None:  # what stays on one machine when episodes run on a cluster: the merge
            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
            cpu = _cpu(lambda: build_store(data, work / "merged", ray=""))
            ray.shutdown()
            rows.append(("  merge (driver of --ray)", cpu, "episode write's serial part: tables, stats, meta"))
        cfg = preset("tiny", steps=args.train_steps, threads=1, val_every=10_000, ckpt_every=10_000, log_every=10_000)
        t0 = time.process_time()
        train(cfg, str(data / "episodes"), work / "run", progress=False, echo=lambda *_: None)
        train_cpu = time.process_time() - t0
        frames = args.train_steps * cfg.batch_size * cfg.seq_len
        raw = _bytes(sessions)
        store = _bytes([data / "episodes"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(sessions)} sessions, {video_s:.0f} s of video at {args.size}² (CPU time of this process, 1 thread)")
    print(f"{'stage':24s} {'CPU-s':>8s} {'CPU-s per hour of video':>24s} {'× real time per core':>22s}")
    for name, cpu, what in rows:
        print(f"{name:24s} {cpu:8.2f} {cpu / video_s * HOUR:24.0f} {video_s / cpu:22.1f}   {what}")
    fps = frames / train_cpu
    print(f"{'training (tiny, 64²)':24s} {train_cpu:8.2f} {30 * HOUR / fps:24.0f} {fps / 30:22.2f}   "
          f"{fps:.1f} frames per CPU-second; per pass over an hour (108 000 frames)")
    print(f"storage per hour: raw sessions {raw / video_s * HOUR / 1e9:.2f} GB, episode store {store / video_s * HOUR / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
