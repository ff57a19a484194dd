"""``egoworld episodes DATA``: pack synced sessions into the LeRobot-v3 episode store.

For every session under DATA with a sync result in ``DATA/aligned/<id>/``:

* the aligned table (one row per *written* frame) is laid on the nominal frame grid, so that
  ``timestamp = frame_index / fps`` as LeRobot requires; a dropped source frame is filled by
  repeating the previous one, flagged ``frame_dropped`` with ``action_valid = False``;
* the video is re-encoded (store resolution, default = source) with a short GOP so that a loader
  can seek to any window and decode at most ``gop - 1`` frames it does not need;
* provenance (session, place, person, objects, task, consent, sync result, capture metrics) goes
  into extra columns of ``meta/episodes`` and into ``meta/egoworld/sessions.json`` (which also
  lists the sessions that could not become episodes, and why). The store keeps what was measured,
  not a verdict on it: the audit applies its spec when it reads them, so a new spec needs no rebuild.

The one read of ``truth/``: a simulated session's task ``progress``/``success`` are *labels* (as a
human annotation would be), copied to ``next.reward`` / ``next.success`` / ``next.done``. Nothing
else of ``truth/`` is read. The store is built in a temporary sibling folder and renamed into
place at the end: a failure never leaves half a store.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld._atomic import atomic_path, replace_dir, temp_dir_beside, write_json, write_parquet
from egoworld.actions import ACTION_DIM
from egoworld.dataset import layout as L
from egoworld.session import Session, SessionError, find_sessions, open_session, read_json_object
from egoworld.video import VideoError

DEFAULT_GOP = 16
TIME_BASE = Fraction(1, 90000)
BLUR_EVERY = 5  # frames between blur measurements (variance of the Laplacian is costly at 256²)


class DatasetError(ValueError):
    """A bad input to, or a bad state of, the episode store; names the file and what to do."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def resolve_store(path: str | Path) -> Path:
    """The store for a path that is either the store itself or a DATA folder holding ``episodes/``."""
    path = Path(path)
    for cand in (path, path / "episodes"):
        if (cand / L.INFO_PATH).exists():
            return cand
    raise DatasetError(path, f"no episode store here (looked for {L.INFO_PATH} and episodes/{L.INFO_PATH}); "
                             "run `egoworld episodes DATA` first")


# ---------------------------------------------------------------- video


def encode_video(path: Path, frames: list[np.ndarray], fps: float, gop: int = DEFAULT_GOP, crf: int = 20) -> None:
    """H.264 with PTS = i/fps exactly (LeRobot's 1e-4 s tolerance) and a keyframe every ``gop`` frames."""
    h, w = frames[0].shape[:2]
    with atomic_path(path, ".mp4") as tmp:
        c = av.open(str(tmp), mode="w", format="mp4")
        try:
            fps = L.timeline_fps(fps)
            s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.time_base = TIME_BASE
            s.codec_context.time_base = TIME_BASE
            s.thread_count = 1
            s.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "bframes": "0", "g": str(gop),
                         "keyint_min": str(gop), "sc_threshold": "0"}
            tick = TIME_BASE.denominator / fps
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                vf.pts, vf.time_base = int(round(i * tick)), TIME_BASE
                for p in s.encode(vf):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        finally:
            c.close()


def decode_all(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Every frame (RGB) and its PTS in ns; errors name the file."""
    from egoworld.video import iter_frames

    frames, pts = [], []
    try:
        for t, f in iter_frames(path):
            pts.append(t)
            frames.append(f)
    except VideoError as e:
        raise DatasetError(path, str(e).split(": ", 1)[-1]) from e
    if not frames:
        raise DatasetError(path, "video has no decodable frames")
    return frames, np.asarray(pts, dtype=np.int64)


def image_metrics(frames: list[np.ndarray]) -> dict:
    """Brightness (mean luma 0–255) per frame, and sharpness (variance of the Laplacian) sampled."""
    luma = np.array([float(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).mean()) for f in frames])
    lap = [float(cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()) for f in frames[::BLUR_EVERY]]
    return {"brightness_mean": round(float(luma.mean()), 3), "brightness_p05": round(float(np.percentile(luma, 5)), 3),
            "brightness_p95": round(float(np.percentile(luma, 95)), 3), "sharpness_lapvar": round(float(np.median(lap)), 3)}


# ---------------------------------------------------------------- one session


@dataclass
class SessionInfo:
    """What the store records about a session, whether or not it became an episode."""

    session_id: str
    path: str
    source: str
    place: str
    person: str
    objects: list[str]
    task: str
    task_text: str
    rig: dict
    consent: dict | None
    consent_file: str
    sync: dict
    capture: dict = field(default_factory=dict)
    episode_index: int | None = None
    excluded: str | None = None
    path_in_store: str | None = None  # the session folder relative to the store root (survives a move)
    content_hash: dict | None = None  # session.json + video.mp4 hashes: how a moved folder is recognised

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _sync_summary(sync: dict) -> dict:
    clocks = sync.get("clocks") or {}
    drift = [abs(c["drift_ppm"]) for c in clocks.values() if c.get("drift_ppm") is not None]
    resid = [c["residual_ms"] for c in clocks.values() if c.get("residual_ms") is not None]
    conf = [c["confidence"] for c in clocks.values() if c.get("confidence") is not None]
    sigma = [c["sigma_ms"] for c in clocks.values() if c.get("sigma_ms") is not None]
    return {"verdict": sync.get("verdict", "failed"), "reason": sync.get("reason", ""),
            "max_abs_drift_ppm": max(drift) if drift else None, "max_residual_ms": max(resid) if resid else None,
            "min_confidence": min(conf) if conf else None, "max_sigma_ms": max(sigma) if sigma else None,
            "clocks": {k: {f: c.get(f) for f in ("offset_ms", "drift_ppm", "residual_ms", "sigma_ms", "confidence", "verdict", "reason")}
                       for k, c in clocks.items()},
            "dropped_frames": len((sync.get("video") or {}).get("dropped_frames") or [])}


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    if not path.exists():
        raise DatasetError(path, "file is missing")
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(path, f"not a readable parquet file (truncated or corrupt?): {e}") from e


def session_info(session: Session, aligned_root: Path) -> SessionInfo:
    meta = session.meta
    sync_path = aligned_root / session.id / "sync.json"
    sync = read_json_object(sync_path, DatasetError) if sync_path.exists() else {"verdict": "failed", "reason": f"not synced ({sync_path} is missing): run `egoworld sync`"}
    task = meta["task"]
    return SessionInfo(
        session_id=session.id, path=str(session.path), source=str(meta.get("source", "")),
        place=str(meta["place"]["id"]), person=str(meta["person"]["id"]),
        objects=[str(o["id"]) for o in meta["objects"]], task=str(task["id"]),
        task_text=str(task.get("description") or task["id"]),
        rig={k: meta["rig"].get(k) for k in ("fps", "width", "height", "camera_model", "fov_deg", "fov_assumed", "intrinsics_source")},
        consent=session.consent, consent_file=str(session.path / "consent.json"), sync=_sync_summary(sync),
    )


def _grid(nominal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each nominal frame, the row that fills it (the latest written frame at or before) and a dropped flag."""
    n = int(nominal[-1]) + 1
    src = np.full(n, -1, dtype=np.int64)
    src[nominal] = np.arange(len(nominal))
    dropped = src < 0
    src = np.maximum.accumulate(src)
    return src, dropped


def _f32_list(x: np.ndarray, width: int) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(x, dtype=np.float32).reshape(-1)), width)


def _labels(session_path: Path, nominal_n: int) -> dict[str, np.ndarray] | None:
    """progress/success on the nominal grid, from truth/frames.parquet (the sanctioned label read)."""
    p = session_path / "truth" / "frames.parquet"
    if not p.exists():
        return None
    try:
        names = pq.read_schema(p).names
    except (pa.ArrowException, OSError):
        names = []  # _read_parquet says what is wrong with the file
    t = _read_parquet(p, columns=["frame", "progress", "success"] + (["track"] if "track" in names else []))
    frame = t.column("frame").to_numpy()
    progress = np.zeros(nominal_n, np.float32)
    success = np.zeros(nominal_n, bool)
    keep = (frame >= 0) & (frame < nominal_n)
    progress[frame[keep]] = t.column("progress").to_numpy(zero_copy_only=False)[keep]
    success[frame[keep]] = t.column("success").to_numpy(zero_copy_only=False)[keep]
    # next.* is the outcome of action[t]: the label at frame t+1 (the last frame keeps its own).
    out = {"next.reward": np.r_[progress[1:], progress[-1:]], "next.success": np.r_[success[1:], success[-1:]]}
    if "track" in t.column_names:  # the simulator's object tracker: what frame t shows (not a label of t+1)
        width = len(L.OBJECT_NAMES)
        track = np.full((nominal_n, width), np.nan, np.float32)
        rows = t.column("track").to_pylist()
        for f, r in zip(frame, rows):
            if 0 <= f < nominal_n and r is not None and len(r) == width:
                track[f] = r
        out[L.OBJECTS_KEY] = track
    return out


def build_episode(session_path: str, aligned_path: str, video_out: str, fps: float, size: tuple[int, int] | None,
                  gop: int, with_labels: bool) -> dict:
    """One episode: the per-frame table (episode-relative; indices filled in later) and its video."""
    session_path, aligned_path = Path(session_path), Path(aligned_path)
    session = open_session(session_path, check_streams=False)
    a = _read_parquet(aligned_path)
    need = ["frame_nominal", "t_video_ns", "action", "action_valid", "head_valid", "left_valid", "right_valid",
            "left_keypoints", "right_keypoints", "sync_residual"] + L.STATE_NAMES  # its pose columns: the state
    missing = [c for c in need if c not in a.column_names]
    if missing:
        raise DatasetError(aligned_path, f"missing columns {missing}; re-run `egoworld sync`")
    frames, pts = decode_all(session.video_path)
    t_video = a.column("t_video_ns").to_numpy()
    if len(t_video) != len(pts) or not np.array_equal(t_video, pts):
        raise DatasetError(aligned_path, f"rows do not match the frames of {session.video_path} "
                                         f"({len(t_video)} rows, {len(pts)} frames); re-run `egoworld sync`")
    capture = image_metrics(frames)
    nominal = a.column("frame_nominal").to_numpy()
    src, dropped = _grid(nominal)
    n = len(src)

    def col(name: str) -> np.ndarray:
        return a.column(name).to_numpy(zero_copy_only=False)

    def lst(name: str, w: int) -> np.ndarray:
        return np.asarray(a.column(name).combine_chunks().flatten()).reshape(-1, w)

    state = np.stack([col(c) for c in L.STATE_NAMES], 1)
    action = lst("action", ACTION_DIM)[src].copy()
    action_valid = col("action_valid")[src] & ~dropped
    action[dropped] = 0.0
    cols: dict[str, pa.Array | np.ndarray] = {
        "observation.state": _f32_list(state[src], L.STATE_DIM),
        "observation.left_keypoints": _f32_list(lst("left_keypoints", 63)[src], 63),
        "observation.right_keypoints": _f32_list(lst("right_keypoints", 63)[src], 63),
        "action": _f32_list(action, ACTION_DIM),
        "action_valid": action_valid,
        "head_valid": col("head_valid")[src],
        "left_hand_valid": col("left_valid")[src],
        "right_hand_valid": col("right_valid")[src],
        "frame_dropped": dropped,
        "sync_residual": col("sync_residual")[src].astype(np.float32),
        "t_video_ns": t_video[src].astype(np.int64),
    }
    has_labels = False
    if with_labels:
        lab = _labels(session_path, n)
        has_labels = lab is not None
        if lab is None:
            lab = {"next.reward": np.zeros(n, np.float32), "next.success": np.zeros(n, bool)}
        if L.OBJECTS_KEY in lab:
            cols[L.OBJECTS_KEY] = _f32_list(lab[L.OBJECTS_KEY], len(L.OBJECT_NAMES))
        cols["next.reward"] = lab["next.reward"].astype(np.float32)
        cols["next.done"] = lab["next.success"].copy()
        cols["next.success"] = lab["next.success"]
    out = [frames[i] for i in src]
    if size is not None and (size[0], size[1]) != out[0].shape[:2]:
        out = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in out]
    encode_video(Path(video_out), out, fps, gop)
    pixel_hist = pixel_histogram(Path(video_out))
    capture.update({"frames_written": len(pts), "frames_nominal": int(n), "dropped_frames": int(dropped.sum()),
                    "dropped_rate": round(float(dropped.mean()), 5),
                    "measured_fps": round(float(1e9 / np.median(np.diff(pts))), 4) if len(pts) > 1 else None})
    return {"table": pa.table(cols), "capture": capture, "has_labels": has_labels, "length": n,
            "height": out[0].shape[0], "width": out[0].shape[1],
            "action_rows": action[action_valid], "n_valid": int(action_valid.sum()), "pixel_hist": pixel_hist}


def build_episode_shard(session_path: str, aligned_path: str, video_out: str, fps: float, size: tuple[int, int] | None,
                        gop: int, with_labels: bool) -> dict:
    """``build_episode`` as a shard on disk (the ``--ray`` path): ``K.mp4``, ``K.parquet`` (the episode's
    table), ``K.actions.parquet`` (its valid actions at source precision, for the stats) beside
    ``video_out``, each written atomically; returns the small rest. ``read_shard`` gives back exactly
    what ``build_episode`` returns, so the merged store equals a local build byte for byte."""
    try:
        r = build_episode(session_path, aligned_path, video_out, fps, size, gop, with_labels)
    except SessionError as e:
        raise DatasetError(e.path, e.problem) from e
    except VideoError as e:
        raise DatasetError(session_path, str(e)) from e
    base = Path(video_out).with_suffix("")
    write_parquet(base.with_suffix(".parquet"), r["table"])
    rows = np.asarray(r["action_rows"])
    write_parquet(base.with_suffix(".actions.parquet"), pa.table({
        "action": pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), ACTION_DIM)}))
    return {k: v for k, v in r.items() if k not in ("table", "action_rows")}


def read_shard(video_out: str | Path, rest: dict) -> dict:
    """The result of ``build_episode`` from the shard ``build_episode_shard`` wrote."""
    base = Path(video_out).with_suffix("")
    acts = _read_parquet(base.with_suffix(".actions.parquet")).column("action").combine_chunks()
    return dict(rest, table=_read_parquet(base.with_suffix(".parquet")),
                action_rows=np.asarray(acts.flatten()).reshape(len(acts), ACTION_DIM))


def measure_only(session_path: str) -> dict:
    """Capture metrics of a session that cannot become an episode (so the audit can still judge it)."""
    session = open_session(session_path, check_streams=False)
    frames, pts = decode_all(session.video_path)
    m = image_metrics(frames)
    d = np.diff(pts)
    m.update({"frames_written": len(pts),
              "measured_fps": round(float(1e9 / np.median(d)), 4) if len(d) else None})
    if len(d):
        period = np.median(d)
        nominal = np.round((pts - pts[0]) / period).astype(np.int64)
        m["frames_nominal"] = int(nominal[-1]) + 1
        m["dropped_frames"] = int(nominal[-1] + 1 - len(pts))
        m["dropped_rate"] = round(m["dropped_frames"] / m["frames_nominal"], 5)
    return m


# ---------------------------------------------------------------- the store


@dataclass
class BuildResult:
    store: Path
    episodes: int
    frames: int
    sessions: list[dict]

    @property
    def excluded(self) -> list[dict]:
        return [s for s in self.sessions if s["episode_index"] is None]


def _store_fps(infos: list[SessionInfo], prefer: float | None) -> float:
    fps = [float(i.rig["fps"]) for i in infos if i.sync["verdict"] != "failed"]
    if prefer is not None:
        return float(prefer)
    if not fps:
        return 30.0
    vals, counts = np.unique(np.round(fps, 3), return_counts=True)
    return float(vals[np.argmax(counts)])


def _episode_row_stats(tables: list[pa.Table], feats: dict, action_rows: np.ndarray) -> dict:
    """stats.json: every numeric/bool feature over all frames; ``action`` over valid frames only."""
    stats = {}
    whole = pa.concat_tables(tables)
    for key, ft in feats.items():
        if ft["dtype"] in ("video", "string"):
            continue
        col = whole.column(key).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            v = np.asarray(col.flatten()).reshape(len(col), -1)
        else:
            v = col.to_numpy(zero_copy_only=False).astype(np.float64)
        if key == "action":
            v = action_rows
        v = v.astype(np.float64)
        if v.ndim == 2:
            v = v[np.all(np.isfinite(v), axis=1)]
        else:
            v = v[np.isfinite(v)]
        stats[key] = L.feature_stats(v)
    return stats


IMAGE_SAMPLES = 8  # frames per episode that the image stats are taken from


def pixel_histogram(video: Path, per_episode: int = IMAGE_SAMPLES) -> list[list[int]]:
    """Counts of each 8-bit value per RGB channel over ``per_episode`` frames spread evenly over the
    stored video. Exact and additive: the store's image stats come from the sum over episodes, so the
    episode tasks compute them in parallel and the merge only adds 3 × 256 counts per episode."""
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = np.linspace(0, len(frames) - 1, min(per_episode, len(frames))).astype(int)
    px = np.stack([frames[i] for i in idx]).reshape(-1, 3)
    return [np.bincount(px[:, ch], minlength=256).tolist() for ch in range(3)]


def _histogram_stats(hist: np.ndarray) -> dict:
    """``L.feature_stats`` of the pixel values / 255 that ``hist`` (3, 256) counts, computed from the counts
    (same order statistics and linear quantiles as numpy's), shaped (3, 1, 1) as LeRobot keeps image stats."""
    levels = np.arange(256) / 255.0
    n = int(hist[0].sum())
    out: dict[str, list] = {"min": [], "max": [], "mean": [], "std": []}
    qs: dict[float, list] = {q: [] for q in L.QUANTILES}
    for h in hist:
        present = np.flatnonzero(h)
        mean = float((h * levels).sum() / n)
        out["min"].append(levels[present[0]])
        out["max"].append(levels[present[-1]])
        out["mean"].append(mean)
        out["std"].append(float(np.sqrt((h * (levels - mean) ** 2).sum() / n)))
        cum = np.cumsum(h)
        for q in L.QUANTILES:
            pos = (n - 1) * q
            lo = int(np.floor(pos))
            a, b = (levels[int(np.searchsorted(cum, k, side="right"))] for k in (lo, min(lo + 1, n - 1)))
            qs[q].append(float(a + (pos - lo) * (b - a)))
    for q in L.QUANTILES:
        out[f"q{int(q * 100):02d}"] = qs[q]
    res = {k: [[[float(x)]] for x in v] for k, v in out.items()}
    res["count"] = [n]
    return res


def _image_stats(store: Path, results: list[dict] | int) -> dict:
    """Per-channel stats of the stored video in [0, 1], from each episode's ``pixel_hist`` (computed now
    for an episode that has none; ``results`` may be just the number of episodes)."""
    total = np.zeros((3, 256), np.int64)
    for k, r in enumerate([{}] * results if isinstance(results, int) else results):
        h = r.get("pixel_hist")
        total += np.asarray(h if h is not None else pixel_histogram(store / L.video_path(k)), np.int64)
    return _histogram_stats(total)


def build_store(data: str | Path, out: str | Path | None = None, size: int | None = None, gop: int = DEFAULT_GOP,
                fps: float | None = None, workers: int = 1, progress: Callable[[str], None] | None = None,
                ray: str | None = None) -> BuildResult:
    """Pack every synced session under ``data`` into a LeRobot-v3 store at ``out`` (default DATA/episodes).

    ``size`` (pixels, square) re-scales the video; None keeps the source resolution. Sessions whose
    sync failed, whose frame rate differs from the store's (LeRobot stores one fps), or whose files
    cannot be read (the file and the problem are named) are listed in ``meta/egoworld/sessions.json``
    with the reason instead of becoming episodes; one bad session does not stop the others.

    ``ray`` (an address, or "" for Ray's default): each episode is one Ray task writing its shard
    into the temporary store (``build_episode_shard``); the merge is the same code as a local build.
    """
    data = Path(data)
    out = Path(out) if out is not None else data / "episodes"
    aligned_root = data / "aligned"
    paths = find_sessions(data)
    if not paths:
        raise DatasetError(data, "no sessions found (a session is a folder holding session.json)")
    infos: list[SessionInfo] = []
    for p in paths:
        try:
            s = open_session(p, check_streams=False)
        except SessionError as e:
            infos.append(unreadable_info(p, e))
            continue
        infos.append(session_info(s, aligned_root))
    store_fps = _store_fps(infos, fps)
    todo: list[SessionInfo] = []
    for info in infos:
        if info.excluded:
            continue
        if info.sync["verdict"] == "failed":
            info.excluded = f"sync failed: {info.sync['reason']}"
        elif abs(float(info.rig["fps"]) - store_fps) > 1e-3:
            info.excluded = f"frame rate {info.rig['fps']} fps differs from the store's {store_fps:g} fps (LeRobot stores one fps)"
        elif not (aligned_root / info.session_id / "aligned.parquet").exists():
            info.excluded = (f"unreadable: {aligned_root / info.session_id / 'aligned.parquet'}: file is missing but "
                             f"sync.json says {info.sync['verdict']}; re-run `egoworld sync`")
        else:
            todo.append(info)
    with_labels = any((Path(i.path) / "truth" / "frames.parquet").exists() for i in todo)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(out)
    try:
        sz = (size, size) if size else None
        work = tmp / ".work"
        work.mkdir()
        jobs = [(i.path, str(aligned_root / i.session_id / "aligned.parquet"), str(work / f"{k}.mp4"), store_fps, sz,
                 gop, with_labels) for k, i in enumerate(todo)]
        built: list[tuple[SessionInfo, dict, Path]] = []

        def collect(k: int, fn: Callable[[], dict]) -> None:
            # A session whose files cannot be read is left out with the reason, like one whose sync
            # failed; the rest of the data set is still built.
            try:
                built.append((todo[k], _named(fn, todo[k]), Path(jobs[k][2])))
            except DatasetError as e:
                todo[k].excluded = f"unreadable: {e}"
            if progress:
                progress(todo[k].session_id)

        if ray is not None:
            from egoworld.cluster import map_tasks

            outcomes = map_tasks(build_episode_shard, jobs, [i.session_id for i in todo], ray)
            for k, o in enumerate(outcomes):
                if o.ok:
                    collect(k, lambda k=k, o=o: read_shard(jobs[k][2], o.value))
                    continue
                todo[k].excluded = f"unreadable: {o.error}" if o.kind == "DatasetError" else f"failed: {o.kind}: {o.error}"
                if progress:
                    progress(todo[k].session_id)
        elif workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futs = [pool.submit(build_episode, *j) for j in jobs]
                for k, f in enumerate(futs):
                    collect(k, f.result)
        else:
            for k, j in enumerate(jobs):
                collect(k, lambda j=j: build_episode(*j))
        todo = [i for i, _, _ in built]
        results = [r for _, r, _ in built]
        for k, (_, _, video) in enumerate(built):
            dst = tmp / L.video_path(k)
            dst.parent.mkdir(parents=True, exist_ok=True)
            video.rename(dst)
        shutil.rmtree(work)
        excluded = [i for i in infos if i.excluded]
        for info in excluded:
            if info.capture.get("error"):
                continue
            try:
                info.capture = measure_only(info.path)
            except (SessionError, DatasetError) as e:
                info.capture = {"error": str(e)}
        _write_store(tmp, todo, results, infos, store_fps, with_labels, size, gop, data, out=out)
        carry_trail(out, tmp, infos)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    frames = sum(r["length"] for r in results)
    return BuildResult(out, len(results), frames, [i.to_json() for i in infos])


def write_store_from_memory(out: str | Path, episodes: list[tuple[SessionInfo, dict]], fps: float, source_data: str | Path,
                            gop: int = DEFAULT_GOP, info_extra: dict | None = None,
                            extra_json: dict[str, object] | None = None) -> BuildResult:
    """A store from episodes held in memory (e.g. generated by a world model), written like ``build_store``.

    Each episode is ``(SessionInfo, {"frames": [(H, W, 3) uint8 …], "table": per-frame columns as in
    ``build_episode`` (no index columns), "has_labels": bool})``: the frames are encoded with the same
    encoder and GOP, the tables, stats, tasks, provenance and splits go through the same writer.
    ``info_extra`` joins info.json's ``egoworld`` block; ``extra_json`` maps store-relative paths to
    objects written as JSON before the store is renamed into place (so it appears with them or not at all).
    """
    out = Path(out)
    if not episodes:
        raise DatasetError(out, "no episodes to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(out)
    try:
        infos, results = [], []
        for k, (info, ep) in enumerate(episodes):
            frames = list(ep["frames"])
            n = len(frames)
            if ep["table"].num_rows != n:
                raise DatasetError(out, f"episode {k}: {ep['table'].num_rows} rows but {n} frames")
            encode_video(tmp / L.video_path(k), frames, fps, gop)
            capture = image_metrics(frames)
            capture.update({"frames_written": n, "frames_nominal": n, "dropped_frames": 0, "dropped_rate": 0.0,
                            "measured_fps": float(fps)})
            t = ep["table"]
            valid = t.column("action_valid").to_numpy(zero_copy_only=False).astype(bool)
            action = np.asarray(t.column("action").combine_chunks().flatten()).reshape(n, ACTION_DIM)
            results.append({"table": t, "capture": capture, "has_labels": bool(ep.get("has_labels", False)), "length": n,
                            "height": frames[0].shape[0], "width": frames[0].shape[1], "action_rows": action[valid],
                            "n_valid": int(valid.sum())})
            infos.append(info)
        with_labels = all("next.reward" in r["table"].column_names for r in results)
        _write_store(tmp, infos, results, infos, fps, with_labels, None, gop, Path(source_data), info_extra, out=out)
        for rel, obj in (extra_json or {}).items():
            write_json(tmp / rel, obj)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(out, len(results), sum(r["length"] for r in results), [i.to_json() for i in infos])


def unreadable_info(path: Path, error: SessionError) -> SessionInfo:
    """The record of a session that cannot be opened: left out, with the file and the problem."""
    try:
        meta = json.loads((path / "session.json").read_text())
        meta = meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        meta = {}

    def ident(key: str) -> str:
        v = meta.get(key)
        return str(v.get("id", "unknown")) if isinstance(v, dict) else "unknown"

    rig = meta.get("rig") if isinstance(meta.get("rig"), dict) else {}
    task = meta.get("task") if isinstance(meta.get("task"), dict) else {}
    objects = meta.get("objects") if isinstance(meta.get("objects"), list) else []
    return SessionInfo(
        session_id=str(meta.get("session_id") or path.name), path=str(path.resolve()), source=str(meta.get("source", "")),
        place=ident("place"), person=ident("person"),
        objects=[str(o.get("id")) for o in objects if isinstance(o, dict)], task=ident("task"),
        task_text=str(task.get("description") or task.get("id") or "unknown"),
        rig={k: rig.get(k) for k in ("fps", "width", "height", "camera_model", "fov_deg", "fov_assumed", "intrinsics_source")}, consent=None,
        consent_file=str(path.resolve() / "consent.json"),
        sync={"verdict": "failed", "reason": "session unreadable", "max_abs_drift_ppm": None, "max_residual_ms": None,
              "min_confidence": None, "max_sigma_ms": None, "clocks": {}, "dropped_frames": 0},
        capture={"error": str(error)}, excluded=f"unreadable: {error}")


def _locate_for_store(infos: list[SessionInfo], out: Path) -> None:
    """Record each session folder relative to the store's final place, with the hashes that
    recognise it after a move (an absolute path alone breaks when DATA is renamed or moved)."""
    from egoworld.session import content_hash

    root = out.resolve()
    for info in infos:
        if not info.path or not Path(info.path).is_dir():
            continue
        folder = Path(info.path).resolve()
        info.path = str(folder)
        info.consent_file = str(folder / "consent.json")
        info.path_in_store = os.path.relpath(folder, root)
        info.content_hash = content_hash(folder)


def carry_trail(old: Path, new: Path, infos: list[SessionInfo] | None = None) -> None:
    """Keep the store's trail (exports, revocations, training runs) across a rebuild, and keep every
    logged revocation in the new copies of the consent records: a rebuild must not forget either."""
    docs = {}
    for rel in L.TRAIL_PATHS:
        src = Path(old) / rel
        if src.exists():
            docs[rel] = read_json_object(src, DatasetError)
            write_json(Path(new) / rel, docs[rel])
    revoked = {}
    for r in (docs.get(L.REVOCATIONS_PATH) or {}).get("revocations", []):
        if isinstance(r, dict) and r.get("subject_id"):
            revoked.setdefault(r["subject_id"], r)
    if not revoked or infos is None:
        return
    sp = Path(new) / L.SESSIONS_PATH
    doc = read_json_object(sp, DatasetError)
    changed = False
    for s in doc["sessions"]:
        c = s.get("consent") or {}
        r = revoked.get(c.get("subject_id"))
        if r and not c.get("revoked_at"):
            s["consent"] = {**c, "revoked_at": r.get("revoked_at"),
                            "revocation": {k: r.get(k) for k in ("at", "by", "effective", "reason")}}
            changed = True
    if changed:
        write_json(sp, doc)
        _mark_episode_rows(Path(new), {s["session_id"]: s["consent"] for s in doc["sessions"] if s.get("consent")})


def _mark_episode_rows(root: Path, consents: dict[str, dict]) -> None:
    """Write revoked consent copies into meta/episodes (the columns LeRobot users see)."""
    for p in sorted((root / "meta" / "episodes").glob("*/*.parquet")):
        t = _read_parquet(p)
        rows = t.to_pylist()
        for r in rows:
            c = consents.get(r.get("session_id"))
            if c and c.get("revoked_at") and not r.get("consent_revoked_at"):
                r["consent_revoked_at"] = str(c["revoked_at"])
                r["consent_json"] = json.dumps(c)
        write_parquet(p, pa.Table.from_pylist(rows, schema=t.schema))


def _named(fn: Callable[[], dict], info: SessionInfo) -> dict:
    try:
        return fn()
    except SessionError as e:
        raise DatasetError(e.path, e.problem) from e
    except VideoError as e:
        raise DatasetError(info.path, str(e)) from e


def episode_columns(info: SessionInfo) -> dict:
    """Provenance columns of one row of meta/episodes (extra columns beside LeRobot's): what was
    recorded and measured, never a verdict — the audit judges these against its spec when it reads them."""
    c = info.consent or {}
    return {
        "session_id": info.session_id, "source": info.source, "place": info.place, "person": info.person,
        "objects": info.objects, "task_id": info.task,
        "subject_id": c.get("subject_id"), "consent_scopes": list(c.get("scopes") or []),
        "consent_expires_at": None if c.get("expires_at") is None else str(c.get("expires_at")),
        "consent_revoked_at": None if c.get("revoked_at") is None else str(c.get("revoked_at")),
        "consent_present": info.consent is not None,
        "consent_json": json.dumps(info.consent) if info.consent is not None else None,
        "sync_verdict": info.sync["verdict"], "sync_reason": info.sync["reason"],
        "sync_max_abs_drift_ppm": info.sync["max_abs_drift_ppm"], "sync_max_residual_ms": info.sync["max_residual_ms"],
        "fps_declared": float(info.rig["fps"]), "source_width": int(info.rig["width"]), "source_height": int(info.rig["height"]),
        "camera_model": str(info.rig["camera_model"]),
        "fov_h_deg": float((info.rig.get("fov_deg") or {}).get("h", float("nan"))),
        "fov_v_deg": float((info.rig.get("fov_deg") or {}).get("v", float("nan"))),
        "measured_fps": info.capture.get("measured_fps"), "dropped_frames": info.capture.get("dropped_frames"),
        "dropped_rate": info.capture.get("dropped_rate"), "brightness_mean": info.capture.get("brightness_mean"),
        "sharpness_lapvar": info.capture.get("sharpness_lapvar"),
    }


EPISODE_SCHEMA_EXTRA = pa.schema([
    ("session_id", pa.string()), ("source", pa.string()), ("place", pa.string()), ("person", pa.string()),
    ("objects", pa.list_(pa.string())), ("task_id", pa.string()), ("subject_id", pa.string()),
    ("consent_scopes", pa.list_(pa.string())), ("consent_expires_at", pa.string()), ("consent_revoked_at", pa.string()),
    ("consent_present", pa.bool_()), ("consent_json", pa.string()),
    ("sync_verdict", pa.string()), ("sync_reason", pa.string()), ("sync_max_abs_drift_ppm", pa.float64()),
    ("sync_max_residual_ms", pa.float64()), ("fps_declared", pa.float64()), ("source_width", pa.int64()),
    ("source_height", pa.int64()), ("camera_model", pa.string()), ("fov_h_deg", pa.float64()), ("fov_v_deg", pa.float64()),
    ("measured_fps", pa.float64()), ("dropped_frames", pa.int64()), ("dropped_rate", pa.float64()),
    ("brightness_mean", pa.float64()), ("sharpness_lapvar", pa.float64()),
])


def episodes_table(rows: list[dict], video_key: str = L.VIDEO_KEY) -> pa.Table:
    """meta/episodes rows: LeRobot's columns first, then our provenance."""
    base = pa.schema([
        ("episode_index", pa.int64()), ("tasks", pa.list_(pa.string())), ("length", pa.int64()),
        ("data/chunk_index", pa.int64()), ("data/file_index", pa.int64()),
        ("dataset_from_index", pa.int64()), ("dataset_to_index", pa.int64()),
        (f"videos/{video_key}/chunk_index", pa.int64()), (f"videos/{video_key}/file_index", pa.int64()),
        (f"videos/{video_key}/from_timestamp", pa.float64()), (f"videos/{video_key}/to_timestamp", pa.float64()),
        ("meta/episodes/chunk_index", pa.int64()), ("meta/episodes/file_index", pa.int64()),
        ("has_reward", pa.bool_()),
    ])
    schema = pa.schema(list(base) + list(EPISODE_SCHEMA_EXTRA))
    return pa.Table.from_pylist(rows, schema=schema)


def _write_store(tmp: Path, todo: list[SessionInfo], results: list[dict], infos: list[SessionInfo], fps: float,
                 with_labels: bool, size: int | None, gop: int, data: Path, info_extra: dict | None = None,
                 out: Path | None = None) -> None:
    if out is not None:
        _locate_for_store(infos, out)
    if results:
        h, w = results[0]["height"], results[0]["width"]
        if any((r["height"], r["width"]) != (h, w) for r in results):
            sizes = sorted({(r["width"], r["height"]) for r in results})
            raise DatasetError(data, f"sessions have different resolutions {sizes}; LeRobot stores one per camera: pass --size")
    else:
        h = w = size or 0
    tasks = sorted({i.task_text for i in todo})
    task_index = {t: k for k, t in enumerate(tasks)}
    with_objects = bool(results) and all(L.OBJECTS_KEY in r["table"].column_names for r in results)
    feats = L.features(h, w, fps, with_labels, with_objects)
    tables, ep_rows, start = [], [], 0
    for k, (info, r) in enumerate(zip(todo, results)):
        info.episode_index = k
        info.capture = r["capture"]
        n = r["length"]
        t = r["table"]
        extra = {
            "timestamp": (np.arange(n) / L.timeline_fps(fps)).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, k, dtype=np.int64),
            "index": np.arange(start, start + n, dtype=np.int64),
            "task_index": np.full(n, task_index[info.task_text], dtype=np.int64),
        }
        for name, v in extra.items():
            t = t.append_column(name, pa.array(v))
        t = t.select([c for c in feats if feats[c]["dtype"] != "video"])
        t = t.cast(pa.schema([(c, L.arrow_type(feats[c])) for c in t.column_names]))
        write_parquet(tmp / L.data_path(k), t)
        tables.append(t)
        chunk, file = L.data_file(k)
        row = {"episode_index": k, "tasks": [info.task_text], "length": n, "data/chunk_index": chunk, "data/file_index": file,
               "dataset_from_index": start, "dataset_to_index": start + n,
               f"videos/{L.VIDEO_KEY}/chunk_index": chunk, f"videos/{L.VIDEO_KEY}/file_index": file,
               f"videos/{L.VIDEO_KEY}/from_timestamp": 0.0, f"videos/{L.VIDEO_KEY}/to_timestamp": n / L.timeline_fps(fps),
               "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0, "has_reward": bool(r["has_labels"])}
        row.update(episode_columns(info))
        ep_rows.append(row)
        start += n
    write_parquet(tmp / L.EPISODES_PATH.format(chunk_index=0, file_index=0), episodes_table(ep_rows))
    L.write_tasks(tmp / L.TASKS_PATH, tasks)
    stats = {}
    if tables:
        action_rows = np.concatenate([r["action_rows"] for r in results]) if results else np.zeros((0, ACTION_DIM))
        stats = _episode_row_stats(tables, feats, action_rows)
        stats[L.VIDEO_KEY] = _image_stats(tmp, results)
    write_json(tmp / L.STATS_PATH, stats)
    write_json(tmp / L.INFO_PATH, L.info_json(fps, feats, len(results), start, len(tasks), extra={
        # the DATA folder relative to the store (a store is copied and shipped: no absolute path in it)
        "egoworld": {"store_version": 1, "gop": gop, "video_key": L.VIDEO_KEY,
                     "source_data": os.path.relpath(data.resolve(), Path(out or tmp).resolve()),
                     "labels": "next.reward = task progress, next.success/next.done = task success at frame t+1 "
                               "(sim sessions only; has_reward per episode)" if with_labels else None,
                     "action_stats": "over frames with action_valid only", **(info_extra or {})}}))
    write_json(tmp / L.SESSIONS_PATH, {"sessions": [i.to_json() for i in infos]})
    from egoworld.dataset.splits import default_splits

    write_json(tmp / L.SPLITS_PATH, default_splits([i.to_json() for i in todo]))
