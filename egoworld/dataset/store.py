"""Read the episode store's metadata without decoding any video (LeRobot's ``LeRobotDatasetMetadata``)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError, resolve_store


def _json(path: Path) -> dict:
    if not path.exists():
        raise DatasetError(path, "file is missing (not an egoworld episode store?)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"not valid JSON ({e})") from e


def read_episodes_table(root: Path) -> pa.Table:
    paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not paths:
        raise DatasetError(root / "meta" / "episodes", "holds no parquet file")
    tables = []
    for p in paths:
        try:
            tables.append(pq.read_table(p))
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(p, f"not a readable parquet file (truncated or corrupt?): {e}") from e
    return pa.concat_tables(tables)


@dataclass
class Store:
    """An opened store: info, episode table (with provenance), tasks, stats, our sessions list."""

    root: Path
    info: dict
    episodes: pa.Table
    tasks: list[str]
    stats: dict
    sessions: list[dict] = field(default_factory=list)
    splits: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def video_key(self) -> str:
        return (self.info.get("egoworld") or {}).get("video_key", L.VIDEO_KEY)

    def episode_rows(self) -> list[dict]:
        return self.episodes.to_pylist()

    def data_file(self, episode_index: int) -> Path:
        row = self.episodes.slice(episode_index, 1).to_pylist()[0]
        return self.root / self.info["data_path"].format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def video_file(self, episode_index: int) -> Path:
        row = self.episodes.slice(episode_index, 1).to_pylist()[0]
        k = self.video_key
        return self.root / self.info["video_path"].format(video_key=k, chunk_index=row[f"videos/{k}/chunk_index"],
                                                          file_index=row[f"videos/{k}/file_index"])

    @property
    def has_labels(self) -> bool:
        return all(k in self.info["features"] for k in L.LABEL_FEATURES)

    def stat(self, feature: str, key: str) -> np.ndarray:
        return np.asarray(self.stats[feature][key], dtype=np.float64)


def open_store(path: str | Path) -> Store:
    """Open the store at ``path`` (the store, or a DATA folder holding ``episodes/``)."""
    root = resolve_store(path)
    info = _json(root / L.INFO_PATH)
    if info.get("codebase_version") != L.CODEBASE_VERSION:
        raise DatasetError(root / L.INFO_PATH, f"codebase_version {info.get('codebase_version')!r}, expected {L.CODEBASE_VERSION}")
    episodes = read_episodes_table(root)
    tasks_path = root / L.TASKS_PATH
    if not tasks_path.exists():
        raise DatasetError(tasks_path, "file is missing")
    try:
        tasks = L.read_tasks(tasks_path)
    except (pa.ArrowException, OSError, KeyError) as e:
        raise DatasetError(tasks_path, f"not a readable tasks table: {e}") from e
    stats = _json(root / L.STATS_PATH)
    sessions = _json(root / L.SESSIONS_PATH)["sessions"] if (root / L.SESSIONS_PATH).exists() else []
    splits = _json(root / L.SPLITS_PATH) if (root / L.SPLITS_PATH).exists() else {}
    return Store(root, info, episodes, tasks, stats, sessions, splits)
