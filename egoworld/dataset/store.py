"""Read the episode store's metadata without decoding any video (LeRobot's ``LeRobotDatasetMetadata``)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError, resolve_store
from egoworld.session import content_hash


def _json(path: Path) -> dict:
    if not path.exists():
        raise DatasetError(path, "file is missing (not an egoworld episode store?)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"not valid JSON ({e})") from e


# Stores built before the audit judged on reading froze a capture verdict into meta/episodes. It
# was the default spec's verdict on the day of the build; dropped on opening, so that no one reads
# it as today's (the audit gives the verdict, under any spec, from the metrics the store keeps).
FROZEN_VERDICT_COLUMNS = ("capture_verdict", "capture_reasons")


def read_episodes_table(root: Path) -> pa.Table:
    """meta/episodes, every file in order (a store built by an older version: without its frozen verdict)."""
    paths = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not paths:
        raise DatasetError(root / "meta" / "episodes", "holds no parquet file")
    tables = []
    for p in paths:
        try:
            tables.append(pq.read_table(p))
        except (pa.ArrowException, OSError) as e:
            raise DatasetError(p, f"not a readable parquet file (truncated or corrupt?): {e}") from e
    table = pa.concat_tables(tables)
    return table.drop_columns([c for c in FROZEN_VERDICT_COLUMNS if c in table.column_names])


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
    _paths: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    @property
    def video_key(self) -> str:
        return (self.info.get("egoworld") or {}).get("video_key", L.VIDEO_KEY)

    def episode_rows(self) -> list[dict]:
        return self.episodes.to_pylist()

    def _files(self) -> dict[str, list[Path]]:
        """Every episode's data and video file, worked out once."""
        if self._paths is None:
            cols, k = self.episodes.to_pydict(), self.video_key
            n = len(self.episodes)
            self._paths = {
                "data": [self.root / self.info["data_path"].format(chunk_index=cols["data/chunk_index"][i],
                                                                   file_index=cols["data/file_index"][i]) for i in range(n)],
                "video": [self.root / self.info["video_path"].format(
                    video_key=k, chunk_index=cols[f"videos/{k}/chunk_index"][i], file_index=cols[f"videos/{k}/file_index"][i])
                    for i in range(n)] if f"videos/{k}/chunk_index" in cols else [],
            }
        return self._paths

    def data_file(self, episode_index: int) -> Path:
        return self._files()["data"][episode_index]

    def video_file(self, episode_index: int) -> Path:
        return self._files()["video"][episode_index]

    def video_start(self, episode_index: int) -> float:
        """Where the episode begins in its video file, in seconds (LeRobot's ``from_timestamp``)."""
        col = f"videos/{self.video_key}/from_timestamp"
        if col not in self.episodes.column_names:
            return 0.0
        return float(self.episodes.column(col)[episode_index].as_py() or 0.0)

    def _sharing(self, files: list[Path]) -> dict[Path, list[int]]:
        out: dict[Path, list[int]] = {}
        for ep, f in enumerate(files):
            out.setdefault(f, []).append(ep)
        return out

    def read_data(self, episodes: Sequence[int], columns: Sequence[str]) -> dict[int, pa.Table]:
        """Each episode's rows (``columns``) of its data file, in file order, each file read once.

        A file may hold several episodes back to back (LeRobot's ``merge_datasets`` writes them so,
        and v3 allows it): then the ``episode_index`` column says whose rows are whose. A file that
        holds one episode is that episode's whole.
        """
        files = self._files()["data"]
        sharing = self._sharing(files)
        lengths = self.episodes.column("length").to_pylist()
        out: dict[int, pa.Table] = {}
        by_file: dict[Path, list[int]] = {}
        for ep in episodes:
            by_file.setdefault(files[ep], []).append(int(ep))
        for path, eps in by_file.items():
            shared = len(sharing[path]) > 1
            cols = list(columns) + (["episode_index"] if shared and "episode_index" not in columns else [])
            try:
                t = pq.read_table(path, columns=cols)
            except (pa.ArrowException, OSError) as e:
                raise DatasetError(path, f"not a readable parquet file (truncated or corrupt?): {e}") from e
            owner = t.column("episode_index").to_numpy() if shared else None
            for ep in eps:
                part = t.take(pa.array(np.flatnonzero(owner == ep))) if shared else t
                if shared and "episode_index" not in columns:
                    part = part.drop_columns(["episode_index"])
                if part.num_rows != lengths[ep]:
                    what = f"{part.num_rows} rows of episode {ep}" if shared else f"{part.num_rows} rows"
                    raise DatasetError(path, f"has {what}, meta/episodes says {lengths[ep]}"
                                       + ("" if shared else " (and no other episode is stored in it)"))
                out[ep] = part
        return out

    @property
    def has_labels(self) -> bool:
        return all(k in self.info["features"] for k in L.LABEL_FEATURES)

    @property
    def has_objects(self) -> bool:
        """Whether the episodes carry an object tracker's report (``observation.objects``)."""
        return L.OBJECTS_KEY in self.info["features"]

    def episode_problem(self, episode_index: int) -> str | None:
        """Why an episode's stored files cannot be handed out (``episode_problem``); None when they look whole.
        A file may hold several episodes back to back (LeRobot's merge): it must hold all of theirs."""
        f = self.file_expectations(episode_index)
        return episode_problem(Path(f["data_file"]), Path(f["video_file"]), f["data_rows"], f["video_frames"],
                               f["data_eps"], f["video_eps"])

    def file_expectations(self, episode_index: int) -> dict:
        """The episode's files, the episodes sharing each, and the rows / frames each must hold in all
        (what ``episode_problem`` checks them against; plain values, to send to a cluster task)."""
        lengths = self.episodes.column("length").to_pylist()
        data, video = self.data_file(episode_index), self.video_file(episode_index)
        data_eps = [e for e, f in enumerate(self._files()["data"]) if e == episode_index or f == data]
        video_eps = [e for e, f in enumerate(self._files()["video"]) if e == episode_index or f == video]
        return {"data_file": str(data), "video_file": str(video), "data_eps": data_eps, "video_eps": video_eps,
                "data_rows": int(sum(lengths[e] for e in data_eps)), "video_frames": int(sum(lengths[e] for e in video_eps))}

    def stat(self, feature: str, key: str) -> np.ndarray:
        return np.asarray(self.stats[feature][key], dtype=np.float64)


def episode_problem(data: Path, video: Path, length: int, frames_expected: int | None = None,
                    data_eps: list[int] | None = None, video_eps: list[int] | None = None) -> str | None:
    """Why an episode's stored files cannot be handed out (missing, truncated, wrong length), from
    their headers only — no decoding; None when they look whole. ``length``: the rows the data file
    must hold (``frames_expected``: the video's frames, default the same); ``data_eps`` / ``video_eps``:
    the episodes sharing each file, named in the message when there are several."""
    import av

    frames_expected = length if frames_expected is None else frames_expected

    def whose(eps: list[int] | None) -> str:
        return "" if not eps or len(eps) == 1 else f" (episodes {eps[0]}–{eps[-1]})"

    try:
        rows = pq.read_metadata(data).num_rows
    except (OSError, pa.ArrowException) as e:
        return f"{data}: not a readable parquet file ({e})"
    if rows != length:
        return f"{data}: {rows} rows, meta/episodes says {length}{whose(data_eps)}"
    try:
        with av.open(str(video)) as c:
            frames = c.streams.video[0].frames
    except (av.error.FFmpegError, OSError, IndexError) as e:
        return f"{video}: not a readable video ({e})"
    if frames and frames != frames_expected:
        return f"{video}: {frames} frames, meta/episodes says {frames_expected}{whose(video_eps)}"
    return None


def session_candidates(root: Path | None, session: dict) -> list[Path]:
    """Where a store's session folder may be, most trusted first: relative to the store (survives
    moving DATA as a whole), the absolute path recorded at build time, and beside the store.
    Without the store's root only the recorded absolute path is a candidate."""
    out: list[Path] = []
    rel = session.get("path_in_store")
    if rel and root is not None:
        out.append(Path(root) / rel)
    recorded = session.get("path")
    if recorded and Path(recorded).is_absolute():
        out.append(Path(recorded))
    name = Path(rel or recorded or session.get("session_id") or "").name
    if name and session.get("content_hash") and root is not None:
        out.append(Path(root).parent / name)
    seen, unique = set(), []
    for p in out:
        key = os.path.normpath(str(p.absolute()))
        if key not in seen:
            seen.add(key)
            unique.append(Path(key))
    return unique


def locate_session(root: Path | None, session: dict) -> Path | None:
    """The folder of a store's session, verified: its session.json and video.mp4 hash to what the
    store recorded (so a moved data set is found, and a different folder under the same name is not).
    None when no candidate matches. A record from a store without hashes is trusted only at an
    absolute path whose session.json names the same session."""
    want = session.get("content_hash")
    for p in session_candidates(root, session):
        if not p.is_dir():
            continue
        if want:
            if content_hash(p) == want:
                return p
        elif _names(p, session.get("session_id")):
            return p
    return None


def _names(path: Path, session_id: str | None) -> bool:
    try:
        return json.loads((path / "session.json").read_text()).get("session_id") == session_id
    except (OSError, ValueError, AttributeError):
        return False


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
    for s in sessions:  # follow a moved data set (unverified: rights go through ``locate_session``)
        rel = s.get("path_in_store")
        if rel and (root / rel).is_dir():
            s["path"] = os.path.normpath(str((root / rel).absolute()))
            s["consent_file"] = str(Path(s["path"]) / "consent.json")
    splits = _json(root / L.SPLITS_PATH) if (root / L.SPLITS_PATH).exists() else {}
    return Store(root, info, episodes, tasks, stats, sessions, splits)


def read_runs(root: str | Path) -> list[dict]:
    """The training runs registered on a store (meta/egoworld/runs.json, written by ``train``)."""
    p = Path(root) / L.RUNS_PATH
    if not p.exists():
        return []
    runs = _json(p).get("runs")
    if not isinstance(runs, list):
        raise DatasetError(p, "must hold {\"runs\": [...]}")
    return [r for r in runs if isinstance(r, dict)]


def register_run(root: str | Path, entry: dict) -> None:
    """Record a training run on its store, so a revocation finds the models without being told
    where they are. One entry per run folder (a resumed run replaces its entry); the read-modify-
    write holds a lock so that two runs starting together both land."""
    import fcntl

    from egoworld._atomic import write_json

    p = Path(root) / L.RUNS_PATH
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.parent / ".runs.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = [r for r in read_runs(root) if r.get("run") != entry["run"]]
        write_json(p, {"runs": runs + [entry]})
