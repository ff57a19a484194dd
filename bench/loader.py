"""Clip loader throughput vs plain sequential PyAV decode of the same files (same run, same machine).

    python bench/loader.py STORE_OR_DATA [--T 16] [--size 64] [--windows 200] [--seed 0]

Baseline: decode every frame of every episode video in order with PyAV (the cheapest way to see
all frames once) and scale each to SIZE². Loader: ``ClipDataset`` random windows (shuffled),
(a) cold, without the cache: every window seeks to its keyframe and decodes only what it needs;
(b) with the cache, second epoch: frames come from memory. Prints frames/s and the ratios.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np

from egoworld.dataset.loader import ClipDataset
from egoworld.dataset.store import open_store


def sequential(store_root: Path, size: int) -> tuple[int, float]:
    store = open_store(store_root)
    n, t0 = 0, time.perf_counter()
    for ep in range(len(store.episodes)):
        with av.open(str(store.video_file(ep))) as c:
            s = c.streams.video[0]
            s.thread_count = 1
            for f in c.decode(s):
                f.reformat(width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()
                n += 1
    return n, time.perf_counter() - t0


def loader(ds: ClipDataset, order: np.ndarray) -> tuple[int, float]:
    n, t0 = 0, time.perf_counter()
    for i in order:
        n += ds[int(i)]["image"].shape[0]
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    n_seq, t_seq = sequential(a.root, a.size)
    seq_fps = n_seq / t_seq
    print(f"sequential PyAV decode + scale to {a.size}²: {n_seq} frames in {t_seq:.2f} s = {seq_fps:.0f} frames/s")
    rng = np.random.default_rng(a.seed)
    cold = ClipDataset(a.root, T=a.T, size=a.size, split="all", seed=a.seed, cache=False)
    order = rng.permutation(len(cold))[: a.windows]
    n, t = loader(cold, order)
    print(f"loader, random windows T={a.T}, no cache: {n} frames in {t:.2f} s = {n / t:.0f} frames/s "
          f"({n / t / seq_fps:.2f}× sequential)")
    warm = ClipDataset(a.root, T=a.T, size=a.size, split="all", seed=a.seed, cache=True)
    loader(warm, np.arange(len(warm)))  # epoch 1 fills the cache
    order = rng.permutation(len(warm))[: a.windows]
    n, t = loader(warm, order)
    print(f"loader, random windows T={a.T}, cached (epoch 2): {n} frames in {t:.2f} s = {n / t:.0f} frames/s "
          f"({n / t / seq_fps:.2f}× sequential)")
    full = ClipDataset(a.root, T=a.T, size=a.size, split="all", seed=a.seed, cache=True)
    n, t = loader(full, rng.permutation(len(full)))
    print(f"loader, one full shuffled epoch with cache from cold: {n} frames in {t:.2f} s = {n / t:.0f} frames/s "
          f"({n / t / seq_fps:.2f}× sequential)")


if __name__ == "__main__":
    main()
