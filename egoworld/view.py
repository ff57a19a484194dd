"""`egoworld view PATH`: a session, an episode or a model's rollout in the rerun viewer (or an .rrd file).

What PATH is decides what is shown:

* a **session** folder (``session.json``): the head camera's frames, the head's 3D trajectory and
  pose (with the camera frustum), both hands' 21 keypoints and the IMU, on the video clock. Motion
  streams run on their own clocks; when sync has run (``DATA/aligned/<id>/sync.json``) their
  samples are placed on the video clock through the fitted offset and drift, otherwise on their
  raw timestamps (the viewer says which).
* an **episode store** (``meta/info.json``, or a DATA folder holding ``episodes/``): one episode
  (``--episode``), already aligned: frames, head pose, hand keypoints, the action's head motion.
* a training **run** (``config.json`` + checkpoints): one clip of ``--data`` (default: the store the
  run trained on), the real frames beside the model's open-loop prediction from the same context
  and actions, and the per-frame PSNR.

With no display (``DISPLAY``/``WAYLAND_DISPLAY`` unset), or with ``--save FILE.rrd``, the recording
is written to a file (open it later with ``rerun FILE.rrd``) instead of spawning the viewer.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from egoworld.state import HEAD_P, HEAD_Q, STATE_DIM

APP_ID = "egoworld"
SKELETON = [(0, 1), (1, 2), (2, 3), (3, 4)] + [(a, b) for f in range(4) for a, b in
                                                ((0, 5 + 4 * f), (5 + 4 * f, 6 + 4 * f), (6 + 4 * f, 7 + 4 * f), (7 + 4 * f, 8 + 4 * f))]
HAND_COLOURS = {"left": (66, 135, 245), "right": (245, 96, 66)}


class ViewError(ValueError):
    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def kind_of(path: str | Path) -> str:
    """``session``, ``store`` or ``run`` — what ``egoworld view`` will show for ``path``."""
    p = Path(path)
    if (p / "session.json").exists():
        return "session"
    if (p / "meta" / "info.json").exists() or (p / "episodes" / "meta" / "info.json").exists():
        return "store"
    from egoworld.runs import is_run

    if is_run(p):
        return "run"
    raise ViewError(p, "is not a session (session.json), an episode store (meta/info.json) or a training run "
                       "(config.json + checkpoints/)")


def _xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(q_wxyz, dtype=np.float64)[..., [1, 2, 3, 0]]


def _frames(video: Path):
    """(seconds, RGB frame) of every frame of a video, in presentation order."""
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            yield float(f.pts * s.time_base) if f.pts is not None else float(f.time), f.to_ndarray(format="rgb24")


def _log_images(rec: Any, entity: str, frames, timeline: str = "time", jpeg: int = 85) -> int:
    """Log (time, rgb) pairs as JPEG-compressed images; returns how many."""
    import rerun as rr

    n = 0
    for i, (t, rgb) in enumerate(frames):
        rec.set_time(timeline, duration=t) if timeline == "time" else rec.set_time(timeline, sequence=i)
        rec.log(entity, rr.Image(rgb).compress(jpeg_quality=jpeg))
        n += 1
    return n


def _log_camera(rec: Any, rig: dict, entity: str = "world/head/camera") -> None:
    """The head camera as a static pinhole (intrinsics) mounted on the head (T_head_camera)."""
    import rerun as rr

    k = rig.get("intrinsics")
    if k is None and rig.get("fov_deg"):  # the store keeps the field of view, not the intrinsics
        fx = rig["width"] / 2 / np.tan(np.radians(rig["fov_deg"]["h"]) / 2)
        fy = rig["height"] / 2 / np.tan(np.radians(rig["fov_deg"]["v"]) / 2)
        k = {"fx": fx, "fy": fy, "cx": rig["width"] / 2, "cy": rig["height"] / 2}
    if k is None:
        return
    T = np.asarray(rig.get("mount", {}).get("T_head_camera", np.eye(4)), dtype=np.float64)
    rec.log(entity, rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]), static=True)
    rec.log(entity, rr.Pinhole(focal_length=[k["fx"], k["fy"]], principal_point=[k["cx"], k["cy"]],
                               width=rig["width"], height=rig["height"], camera_xyz=rr.ViewCoordinates.RDF,
                               image_plane_distance=0.15), static=True)


def _log_head(rec: Any, t: np.ndarray, p: np.ndarray, q_wxyz: np.ndarray, timeline: str = "time") -> None:
    """Head pose over time (Transform3D) and its whole path (a static line strip)."""
    import rerun as rr

    ok = np.all(np.isfinite(p), axis=1) & np.all(np.isfinite(q_wxyz), axis=1)
    t, p, q = t[ok], p[ok], q_wxyz[ok]
    idx = rr.TimeColumn(timeline, duration=t) if timeline == "time" else rr.TimeColumn(timeline, sequence=t.astype(np.int64))
    rec.send_columns("world/head", indexes=[idx], columns=rr.Transform3D.columns(translation=p, quaternion=_xyzw(q)))
    rec.log("world/head_trajectory", rr.LineStrips3D([p], colors=[(200, 200, 60)], radii=0.003), static=True)


def _log_hand(rec: Any, side: str, t: np.ndarray, kp: np.ndarray, timeline: str = "time") -> None:
    """21 keypoints (N, 21, 3) of one hand over time, as points and bones."""
    import rerun as rr

    ok = np.all(np.isfinite(kp.reshape(len(kp), -1)), axis=1)
    t, kp = t[ok], kp[ok]
    if not len(t):
        return
    idx = rr.TimeColumn(timeline, duration=t) if timeline == "time" else rr.TimeColumn(timeline, sequence=t.astype(np.int64))
    n = len(t)
    rec.send_columns(f"world/hands/{side}/keypoints", indexes=[idx],
                     columns=rr.Points3D.columns(positions=kp.reshape(-1, 3)).partition([21] * n))
    bones = np.stack([kp[:, [a, b]] for a, b in SKELETON], axis=1)  # (N, 20, 2, 3)
    rec.send_columns(f"world/hands/{side}/bones", indexes=[idx],
                     columns=rr.LineStrips3D.columns(strips=list(bones.reshape(-1, 2, 3))).partition([len(SKELETON)] * n))
    rec.log(f"world/hands/{side}/keypoints", rr.Points3D.from_fields(colors=[HAND_COLOURS[side]], radii=0.004), static=True)
    rec.log(f"world/hands/{side}/bones", rr.LineStrips3D.from_fields(colors=[HAND_COLOURS[side]], radii=0.002), static=True)


def _to_video_clock(sync: dict | None, clock: str, t_stream_s: np.ndarray) -> tuple[np.ndarray, bool]:
    """Stream-clock seconds → video-clock seconds through sync.json's fit (inverse of its segments).

    Returns (times, mapped); without a usable fit the raw stream times come back unmapped.
    """
    c = (sync or {}).get("clocks", {}).get(clock)
    if clock == "camera":
        return t_stream_s, True
    if not c or not c.get("segments") or c.get("verdict") == "failed":
        return t_stream_s, False
    segs = c["segments"]
    starts_video = np.array([-np.inf if s["start_s"] is None else s["start_s"] for s in segs])
    from egoworld.sync.estimate import stream_time, video_time

    starts_stream = np.array([stream_time(v, s["offset_ms"] * 1e-3, s["drift_ppm"] * 1e-6) if np.isfinite(v) else -np.inf
                              for s, v in zip(segs, starts_video)])
    i = np.clip(np.searchsorted(starts_stream, t_stream_s, side="right") - 1, 0, len(segs) - 1)
    off = np.array([s["offset_ms"] * 1e-3 for s in segs])[i]
    drift = np.array([s["drift_ppm"] * 1e-6 for s in segs])[i]
    return video_time(t_stream_s, off, drift), True


def find_sync(session_path: Path, session_id: str) -> dict | None:
    """The session's sync.json, where ``egoworld sync`` puts it (DATA/aligned/<id>/), if it exists."""
    for cand in (session_path.parent / "aligned" / session_id / "sync.json", session_path / "sync.json"):
        if cand.exists():
            return json.loads(cand.read_text())
    return None


def log_session(rec: Any, path: str | Path) -> dict:
    """Log a raw session; returns what was logged (entities, counts, whether motion is on the video clock)."""
    import rerun as rr

    from egoworld.session import open_session

    s = open_session(path)
    sync = find_sync(Path(path), s.id)
    rig = s.meta["rig"]
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    _log_camera(rec, rig)
    out: dict[str, Any] = {"kind": "session", "id": s.id, "entities": [], "on_video_clock": {}}
    n = _log_images(rec, "world/head/camera/image", _frames(s.video_path))
    out["frames"] = n
    out["entities"].append("world/head/camera/image")
    streams = s.meta["streams"]
    if "head_pose" in streams:
        a = s.arrays("head_pose")
        t, mapped = _to_video_clock(sync, streams["head_pose"]["clock"], a["t_ns"] * 1e-9)
        _log_head(rec, t, np.c_[a["px"], a["py"], a["pz"]], np.c_[a["qw"], a["qx"], a["qy"], a["qz"]])
        out["entities"] += ["world/head", "world/head_trajectory"]
        out["on_video_clock"]["head_pose"] = mapped
    if "hands" in streams:
        a = s.arrays("hands")
        t, mapped = _to_video_clock(sync, streams["hands"]["clock"], a["t_ns"] * 1e-9)
        for side in ("left", "right"):
            m = a["side"] == side
            if m.any():
                _log_hand(rec, side, t[m], a["keypoints"][m])
                out["entities"] += [f"world/hands/{side}/keypoints", f"world/hands/{side}/bones"]
        out["on_video_clock"]["hands"] = mapped
    if "imu" in streams:
        a = s.arrays("imu")
        t, mapped = _to_video_clock(sync, streams["imu"]["clock"], a["t_ns"] * 1e-9)
        rec.send_columns("imu/gyro", indexes=[rr.TimeColumn("time", duration=t)],
                         columns=rr.Scalars.columns(scalars=np.c_[a["gx"], a["gy"], a["gz"]]))
        rec.log("imu/gyro", rr.SeriesLines(names=["gx", "gy", "gz"]), static=True)
        out["entities"].append("imu/gyro")
        out["on_video_clock"]["imu"] = mapped
    note = ("Motion placed on the video clock through sync.json (offset + drift per clock)." if sync else
            "No sync.json found (run `egoworld sync`): motion samples are on their own clocks' raw timestamps.")
    rec.log("notes", rr.TextDocument(f"{s.id}\n\nplace {s.meta['place']} · person {s.meta['person']} · task "
                                     f"{s.meta['task']}\n\n{note}"), static=True)
    return out


def _open_store(path: Path):
    from egoworld.dataset.store import open_store

    return open_store(path)


def log_episode(rec: Any, path: str | Path, episode: int = 0) -> dict:
    """Log one aligned episode of a store: frames, head pose, hand keypoints, head motion of the action."""
    import pyarrow.parquet as pq
    import rerun as rr

    store = _open_store(Path(path))
    n_eps = store.episodes.num_rows
    if not 0 <= episode < n_eps:
        raise ViewError(store.root, f"has episodes 0…{n_eps - 1}; --episode {episode} is not one of them")
    row = store.episode_rows()[episode]
    t = pq.read_table(store.data_file(episode))
    ep = int(row["episode_index"])
    mine = np.asarray(t.column("episode_index").to_numpy()) == ep
    ts = np.asarray(t.column("timestamp").to_numpy(), dtype=np.float64)[mine]

    def mat(name: str, w: int) -> np.ndarray:
        return np.asarray(t.column(name).combine_chunks().flatten(), dtype=np.float64).reshape(t.num_rows, w)[mine]

    state = mat("observation.state", STATE_DIM)
    sess = next((s for s in store.sessions if s["session_id"] == row["session_id"]), {})
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    if sess.get("rig"):
        _log_camera(rec, sess["rig"])
    frames = list(_frames(store.video_file(episode)))
    t0 = float(row.get(f"videos/{store.video_key}/from_timestamp") or 0.0)
    n = _log_images(rec, "world/head/camera/image", ((tt - t0, rgb) for tt, rgb in frames))
    _log_head(rec, ts, state[:, HEAD_P], state[:, HEAD_Q])
    entities = ["world/head/camera/image", "world/head", "world/head_trajectory"]
    for side in ("left", "right"):
        kp = mat(f"observation.{side}_keypoints", 63).reshape(-1, 21, 3)
        valid = np.asarray(t.column(f"{side}_hand_valid").to_numpy(zero_copy_only=False), dtype=bool)[mine]
        _log_hand(rec, side, ts[valid], kp[valid])
        entities += [f"world/hands/{side}/keypoints", f"world/hands/{side}/bones"]
    act = mat("action", 138)
    rec.send_columns("action/head", indexes=[rr.TimeColumn("time", duration=ts)], columns=rr.Scalars.columns(scalars=act[:, :6]))
    rec.log("action/head", rr.SeriesLines(names=["tx", "ty", "tz", "rx", "ry", "rz"]), static=True)
    entities.append("action/head")
    rec.log("notes", rr.TextDocument(f"episode {ep} of {store.root}: {row['session_id']}\n\nplace {row['place']} · "
                                     f"person {row['person']} · {len(ts)} frames, aligned by sync"), static=True)
    return {"kind": "episode", "id": row["session_id"], "episode": ep, "frames": n, "entities": entities}


def log_rollout(rec: Any, run: str | Path, data: str | None = None, split: str = "heldout", clip: int = 0,
                horizon: int = 32) -> dict:
    """Log one clip: real frames beside the model's open-loop prediction (and copy-last), with PSNR per frame."""
    import rerun as rr
    import torch

    from egoworld import runs
    from egoworld.train.data import open_clips

    model, cfg = runs.load_model(run)
    data = data or (cfg.extra or {}).get("data")
    if not data:
        raise ViewError(run, "does not say which data it trained on: pass --data DATA/episodes")
    C = cfg.context
    ds = None
    for name in (split, "val", "train"):
        try:
            ds = open_clips(data, cfg, name, T=C + horizon)
        except (ValueError, KeyError):
            continue
        if len(ds):
            split = name
            break
    if ds is None or not len(ds):
        raise ViewError(data, f"has no clip of {C + horizon} frames to roll the model out on")
    item = ds[min(clip, len(ds) - 1)]
    img, act = item["image"][None], item["action"][None, : C - 1 + horizon]
    valid = item["action_valid"][None, : C - 1 + horizon] if "action_valid" in item else None
    with torch.no_grad():
        pred = model.predict(img[:, :C], act, valid=valid, state=item["state"][None] if "state" in item else None)[0][0]
    real = img[0, : C + horizon]
    model_frames = torch.cat([real[:C], pred])
    copy_last = torch.cat([real[:C], real[C - 1:C].expand(horizon, -1, -1, -1)])
    to8 = lambda x: (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for name, frames in (("real", real), ("model", model_frames), ("copy_last", copy_last)):
        _log_images(rec, f"rollout/{name}", ((float(i), f) for i, f in enumerate(to8(frames))), timeline="frame")
    mse = ((model_frames - real) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    psnr = (10 * torch.log10(1.0 / mse)).numpy()
    rec.send_columns("rollout/psnr_model", indexes=[rr.TimeColumn("frame", sequence=np.arange(C, C + horizon))],
                     columns=rr.Scalars.columns(scalars=psnr[C:]))
    rec.log("notes", rr.TextDocument(f"run {run}\n\nclip {clip} of the {split} split of {data}: frames 0…{C - 1} are the "
                                     f"context, {C}…{C + horizon - 1} the model's open-loop prediction from the recorded "
                                     "actions (copy-last: the last context frame held)"), static=True)
    return {"kind": "rollout", "id": str(run), "split": split, "clip": clip, "frames": C + horizon,
            "entities": ["rollout/real", "rollout/model", "rollout/copy_last", "rollout/psnr_model"]}


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view(path: str | Path, save: str | Path | None = None, episode: int = 0, data: str | None = None,
         split: str = "heldout", clip: int = 0) -> tuple[dict, Path | None]:
    """Log ``path`` to rerun: into the file ``save`` (or ``<name>.rrd`` with no display), else a spawned viewer.

    Returns (what was logged, the .rrd path or None when a viewer was spawned).
    """
    import rerun as rr

    path = Path(path)
    kind = kind_of(path)
    if save is None and not has_display():
        save = Path(f"{path.resolve().name}.rrd")
    rec = rr.RecordingStream(APP_ID)
    part = None
    if save is not None:
        # written under a temporary name and renamed at the end: a failure leaves no half recording
        save = Path(save)
        save.parent.mkdir(parents=True, exist_ok=True)
        part = save.with_name(f".{save.stem}.{os.getpid()}.part.rrd")
        rec.save(part)
    else:
        rec.spawn()
    try:
        if kind == "session":
            info = log_session(rec, path)
        elif kind == "store":
            info = log_episode(rec, path, episode)
        else:
            info = log_rollout(rec, path, data, split, clip)
        rec.flush()
    except BaseException:
        if part is not None:
            rec.disconnect()
            part.unlink(missing_ok=True)
        raise
    if part is not None:
        rec.disconnect()
        os.replace(part, save)
    return info, save
