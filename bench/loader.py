"""Clip loader throughput against raw sequential decode and LeRobot's loader, in the same run.

    python bench/loader.py STORE_OR_DATA [--T 16] [--size 0] [--batch 8] [--workers 0,2] [--rounds 3]
                           [--lerobot-python PATH] [--backends pyav,torchcodec]

Every loader reads the same windows: the T-frame windows ``ClipDataset`` tiles the store with
(split all, ``--seed``), in one shuffled order, through a torch ``DataLoader`` of batch
``--batch``, one epoch from a cold start (new workers, empty cache). Columns:

- raw sequential decode (the floor): every frame of every episode video, in order, with PyAV
  and one colour converter per file, scaled to SIZE² (``--size 0``: the stored size, as LeRobot
  returns it), as numpy arrays;
- egoworld ``ClipDataset`` as training uses it (the frame cache on), its second epoch, and without the cache;
- ``LeRobotDataset`` with ``delta_timestamps`` for the same T frames at the same window starts,
  per video backend: LeRobot pins an older torch, so it runs in its own venv, whose python
  ``--lerobot-python`` names (``"not installed"`` is printed without it).

The machine may be shared: each round runs every column once, in an order that alternates from
round to round, and the ratios are taken within a round; the median round is printed last. The
targets (issue 16) are judged on the first epoch from cold; the second epoch of the same loader
(caches filled) is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter
from torch.utils.data import DataLoader

from egoworld.dataset.loader import ClipDataset, collate
from egoworld.dataset.store import open_store

HERE = Path(__file__).resolve().parent


def sequential(root: Path, size: int) -> tuple[int, float]:
    store = open_store(root)
    files = list(dict.fromkeys(store.video_file(ep) for ep in range(len(store.episodes))))
    n, t0 = 0, time.perf_counter()
    for path in files:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_count = 1
            conv = VideoReformatter()
            for f in c.decode(s):
                conv.reformat(f, width=size, height=size, format="rgb24", interpolation="AREA", threads=1).to_ndarray()
                n += 1
    return n, time.perf_counter() - t0


def egoworld_epoch(root: Path, T: int, size: int, seed: int, order: list[int], batch: int, workers: int,
                   cache: bool, warm: bool = False) -> tuple[int, float]:
    """One epoch from cold (new workers, empty cache), or with ``warm`` the second epoch of the same
    loader (persistent workers keep their caches, as ``make_loader``'s do)."""
    ds = ClipDataset(root, T=T, size=size, split="all", seed=seed, cache=cache)  # opening is not timed (nor LeRobot's)
    loader = DataLoader(ds, batch_size=batch, sampler=order, num_workers=workers, collate_fn=collate,
                        persistent_workers=workers > 0)
    for _ in range(2 if warm else 1):
        n, t0 = 0, time.perf_counter()
        for b in loader:
            n += b["image"].shape[0] * b["image"].shape[1]
    return n, time.perf_counter() - t0


def lerobot_epoch(python: str, root: Path, T: int, indices: list[int], batch: int, workers: int,
                  backend: str) -> tuple[int, float]:
    cmd = [python, str(HERE / "lerobot_loader.py"), str(root), "--indices", ",".join(map(str, indices)),
           "--T", str(T), "--batch", str(batch), "--workers", str(workers), "--backend", backend]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"LeRobot ({backend}) failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["frames"], out["seconds"]


def lerobot_version(python: str | None) -> str | None:
    if not python:
        return None
    r = subprocess.run([python, str(HERE / "lerobot_loader.py"), "--version"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        return None
    v = json.loads(r.stdout.strip().splitlines()[-1])
    return f"lerobot {v['lerobot']} (torch {v['torch']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--size", type=int, default=0, help="frame size (0: the stored size)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lerobot-python", help="python of a venv where lerobot is installed")
    ap.add_argument("--backends", default="pyav,torchcodec")
    a = ap.parse_args()

    store = open_store(a.root)
    root = store.root
    size = a.size or int(store.info["features"][store.video_key]["shape"][0])
    ds = ClipDataset(root, T=a.T, size=size, split="all", seed=a.seed)
    windows = ds.windows()
    order = np.random.default_rng(a.seed).permutation(len(windows)).tolist()
    starts = store.episodes.column("dataset_from_index").to_numpy()
    lr_indices = [int(starts[windows[i][0]] + windows[i][1]) for i in order]
    version = lerobot_version(a.lerobot_python)
    workers = [int(w) for w in a.workers.split(",")]
    backends = []
    for be in a.backends.split(",") if version else []:
        try:  # a backend that cannot start (torchcodec without FFmpeg's libraries) is named and left out
            lerobot_epoch(a.lerobot_python, root, a.T, lr_indices[: a.batch], a.batch, 0, be)
            backends.append(be)
        except RuntimeError as e:
            print(f"LeRobotDataset {be}: unavailable ({str(e).strip().splitlines()[-1][:160]})")
    print(f"store {root.name}: {len(store.episodes)} episodes, {len(windows)} windows of {a.T} frames at {size}², "
          f"DataLoader batch {a.batch}; torch threads {torch.get_num_threads()}; "
          f"LeRobot: {version or 'not installed (give --lerobot-python)'}")

    cols: list[tuple[str, object]] = [("raw sequential decode", lambda: sequential(root, size))]
    for w in workers:
        cols.append((f"egoworld ClipDataset, workers {w}",
                     lambda w=w: egoworld_epoch(root, a.T, size, a.seed, order, a.batch, w, True)))
        cols.append((f"egoworld ClipDataset 2nd epoch, workers {w}",
                     lambda w=w: egoworld_epoch(root, a.T, size, a.seed, order, a.batch, w, True, warm=True)))
        cols.append((f"egoworld ClipDataset no cache, workers {w}",
                     lambda w=w: egoworld_epoch(root, a.T, size, a.seed, order, a.batch, w, False)))
        if version:
            for be in backends:
                cols.append((f"LeRobotDataset {be}, workers {w}",
                             lambda w=w, be=be: lerobot_epoch(a.lerobot_python, root, a.T, lr_indices, a.batch, w, be)))
    rounds: list[dict[str, float]] = []
    for r in range(a.rounds):
        fps = {}
        for name, fn in (cols if r % 2 == 0 else cols[::-1]):
            n, t = fn()
            fps[name] = n / t
        rounds.append(fps)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.0f}" for k, v in fps.items()) + " frames/s", flush=True)

    def ratio(num: str, den: str) -> list[float]:
        return [f[num] / f[den] for f in rounds]

    print(f"\n{'frames/s (median of rounds)':52s}" + "".join(f"{'w ' + str(w):>10s}" for w in workers))
    names = ["raw sequential decode"] + sorted({n.rsplit(", workers", 1)[0] for n, _ in cols[1:]}, key=str)
    for base in names:
        row = []
        for w in workers:
            key = base if base.startswith("raw") else f"{base}, workers {w}"
            row.append(f"{statistics.median(f[key] for f in rounds):10.0f}" if key in rounds[0] else f"{'–':>10s}")
        print(f"{base:52s}" + "".join(row))
    print("\nratios within a round (median [min–max] over rounds):")
    for w in workers:
        targets = [("raw sequential decode", 0.8)]
        if version:
            targets += [(f"LeRobotDataset {be}, workers {w}", 3.0) for be in backends]
        for ours in (f"egoworld ClipDataset, workers {w}", f"egoworld ClipDataset 2nd epoch, workers {w}"):
            for den, goal in targets:
                rs = ratio(ours, den)
                print(f"  {ours} / {den}: {statistics.median(rs):.2f}× [{min(rs):.2f}–{max(rs):.2f}]  "
                      f"(target ≥ {goal}×: {'met' if statistics.median(rs) >= goal else 'missed'})")
    if not version:
        print("  LeRobotDataset: not installed")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
