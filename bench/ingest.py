"""Ingest (sync + episodes) on Ray against the local process pool: sessions per second, on the same sessions.

    python bench/ingest.py                    # 8 simulated sessions × 10 s at 128² (captured once, cached)
    python bench/ingest.py --sessions 16 --seconds 20 --size 256
    python bench/ingest.py --data DATA        # any folder of sessions

Four ways through the same sessions, in one run: the local pool (``--workers``) with 1 and 2
processes, and a local Ray cluster of 1 and 2 CPUs (one task per session). Each syncs every
session and packs the episode store; the figure is sessions per second of that wall time. The
Ray cluster is started before the clock starts (on a real cluster it is already running), and
each mode runs ``--repeats`` times (best kept: the machine is shared). What it answers: how much
Ray's scheduling costs on one machine against our own pool (the ratio), so that the gain from
more machines is not eaten by the engine.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from common import sim_sessions  # noqa: E402  (bench/ is the script's folder)

CACHE = Path(tempfile.gettempdir()) / "egoworld_bench_ingest"


def _sessions(args: argparse.Namespace) -> Path:
    return sim_sessions(args, CACHE)


def _ingest(data: Path, out: Path, workers: int, ray: str | None) -> float:
    """Wall seconds of sync + episodes over every session of ``data``."""
    from rich.console import Console

    from egoworld.dataset.build import build_store
    from egoworld.session import find_sessions
    from egoworld.sync.batch import run_batch, run_batch_ray

    quiet = Console(quiet=True)
    shutil.rmtree(data / "aligned", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    sessions = find_sessions(data)
    t = time.perf_counter()
    if ray is None:
        run_batch(sessions, data / "aligned", workers, quiet)
    else:
        run_batch_ray(sessions, data / "aligned", ray, quiet)
    build_store(data, out, workers=workers, ray=ray)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="a folder of sessions (default: simulated ones, cached)")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import ray

    from egoworld.session import find_sessions

    src = _sessions(args)
    work = Path(tempfile.mkdtemp(prefix="egoworld_ingest_"))
    data = work / "data"
    shutil.copytree(src, data, ignore=shutil.ignore_patterns("aligned", "episodes", "DONE"))
    n = len(find_sessions(data))
    best: dict[str, float] = {}
    try:
        for mode, workers, cpus in (("local pool, 1 process", 1, None), ("local pool, 2 processes", 2, None),
                                    ("Ray, 1 CPU", 1, 1), ("Ray, 2 CPUs", 2, 2)):
            if cpus is not None:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            runs = [_ingest(data, work / "episodes", workers, "" if cpus else None) for _ in range(args.repeats)]
            if cpus is not None:
                ray.shutdown()
            best[mode] = min(runs)
            print(f"{mode:26s} {n / best[mode]:6.3f} sessions/s  (best of {args.repeats}: {best[mode]:.1f} s for {n} sessions)",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for k in (1, 2):
        local = best[f"local pool, {k} process" + ("es" if k > 1 else "")]
        on_ray = best[f"Ray, {k} CPU" + ("s" if k > 1 else "")]
        print(f"Ray / local pool with {k} worker{'s' if k > 1 else ''}: {local / on_ray:.2f}× the sessions per second")
    print(f"2 vs 1 worker: local pool {best['local pool, 1 process'] / best['local pool, 2 processes']:.2f}×, "
          f"Ray {best['Ray, 1 CPU'] / best['Ray, 2 CPUs']:.2f}×")


if __name__ == "__main__":
    main()
