"""LeRobot's own tools on an egoworld store — run in LeRobot's venv (it pins an older torch).

    LEROBOT_PYTHON bench/lerobot_interop.py DATA/episodes OUT

Loads the store with ``LeRobotDataset`` (both video backends, ``delta_timestamps``), merges it
with itself (``merge_datasets``: every episode's rows in one data file, its frames in one mp4),
splits it and deletes an episode (``split_dataset``, ``delete_episodes``), and says which of our
per-episode consent columns each result still has. OUT/merged is then a store in LeRobot's merged
layout for egoworld to read (``ClipDataset(OUT/merged)``). Imports nothing from egoworld.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

CONSENT = ("subject_id", "consent_scopes", "consent_expires_at", "consent_revoked_at", "consent_present",
           "consent_json")


def main() -> None:
    import pandas as pd
    from lerobot.datasets.dataset_tools import (
        delete_episodes,
        merge_datasets,
        split_dataset,
    )
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    meta = LeRobotDatasetMetadata("local/egoworld", root=root)
    key = meta.video_keys[0]
    report = {"episodes": meta.total_episodes, "frames": meta.total_frames}
    for backend in ("pyav", "torchcodec"):
        ds = LeRobotDataset("local/egoworld", root=root, video_backend=backend,
                            delta_timestamps={key: [i / meta.fps for i in range(4)]})
        item = ds[len(ds) // 2]
        report[f"load_{backend}"] = list(item[key].shape)
    ds = LeRobotDataset("local/egoworld", root=root)

    def consent_columns(path: Path) -> list[str]:
        cols = pd.concat(pd.read_parquet(p) for p in sorted((path / "meta/episodes").glob("*/*.parquet"))).columns
        return [c for c in CONSENT if c in cols]

    copy = out / "copy"
    shutil.copytree(root, copy)
    merged = merge_datasets([ds, LeRobotDataset("local/egoworld_copy", root=copy)], "local/merged", out / "merged")
    report["merged"] = {"episodes": merged.meta.total_episodes,
                        "data_files": len(list((out / "merged/data").glob("*/*.parquet"))),
                        "video_files": len(list((out / "merged/videos").glob("*/*/*.mp4"))),
                        "consent_columns": consent_columns(out / "merged")}
    parts = split_dataset(ds, {"a": 0.5, "b": 0.5}, output_dir=out / "split")
    report["split"] = {k: v.meta.total_episodes for k, v in parts.items()}
    report["split_consent_columns"] = consent_columns(next(iter(parts.values())).root)
    kept = delete_episodes(ds, [0], output_dir=out / "deleted", repo_id="local/deleted")
    report["deleted"] = {"episodes": kept.meta.total_episodes, "consent_columns": consent_columns(out / "deleted")}
    shutil.rmtree(copy)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
