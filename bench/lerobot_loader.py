"""LeRobot's own loader over given windows of a store — run by ``bench/loader.py`` in LeRobot's venv.

    LEROBOT_PYTHON bench/lerobot_loader.py STORE --indices 0,16,… --T 16 [--batch 8] [--workers 0]
                   [--backend pyav|torchcodec]
    LEROBOT_PYTHON bench/lerobot_loader.py --version

LeRobot pins a torch older than ours, so it lives in a virtual environment of its own and this
script imports nothing from egoworld. Each index is a window start (LeRobot's global frame
index); ``delta_timestamps`` asks for the T frames from there, as a training loop would. Prints
one JSON line: frames, seconds (the epoch's wall time, imports and opening excluded).
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?")
    ap.add_argument("--indices", default="")
    ap.add_argument("--T", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--backend", default="pyav")
    ap.add_argument("--version", action="store_true")
    a = ap.parse_args()
    from importlib.metadata import version

    if a.version:
        print(json.dumps({"lerobot": version("lerobot"), "torch": version("torch")}))
        return
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    meta = LeRobotDatasetMetadata("local/bench", root=a.root)
    keys = list(meta.video_keys)
    delta = {k: [i / meta.fps for i in range(a.T)] for k in keys}
    ds = LeRobotDataset("local/bench", root=a.root, delta_timestamps=delta, video_backend=a.backend)
    order = [int(x) for x in a.indices.split(",") if x]
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, sampler=order, num_workers=a.workers)
    frames, t0 = 0, time.perf_counter()
    for b in loader:
        frames += int(b[keys[0]].shape[0] * b[keys[0]].shape[1])
    print(json.dumps({"frames": frames, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
