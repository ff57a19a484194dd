"""The raw session: streams at their native rates on their own clocks, rig metadata, consent.

Reading validates: a missing file, a wrong or missing column, a NaN, a timestamp that does not
increase or an unreadable video each raise ``SessionError`` naming the file and the problem.
Writing is atomic per file, and a whole session is written into a temporary folder that is
renamed into place at the end, so a crash never leaves a half session under the real name.
See docs/session-format.md.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from egoworld._atomic import atomic_dir, write_json, write_parquet
from egoworld.video import VideoError, probe

SCHEMA_VERSION = 1
SCOPES = ("research", "commercial")

_F64 = pa.float64()
STREAM_SCHEMAS: dict[str, pa.Schema] = {
    "head_pose": pa.schema([("t_ns", pa.int64())] + [(c, _F64) for c in ("px", "py", "pz", "qw", "qx", "qy", "qz")]),
    "imu": pa.schema([("t_ns", pa.int64())] + [(c, _F64) for c in ("gx", "gy", "gz", "ax", "ay", "az")]),
    "hands": pa.schema(
        [("t_ns", pa.int64()), ("side", pa.string())]
        + [(f"wrist_{c}", _F64) for c in ("px", "py", "pz", "qw", "qx", "qy", "qz")]
        + [("keypoints", pa.list_(_F64, 63))]
    ),
}
# A session needs some record of the head's motion to sync against: a tracked pose or an IMU
# (an action camera has only its gyro).
HEAD_MOTION_STREAMS = ("head_pose", "imu")
SESSION_KEYS = ("schema_version", "session_id", "source", "duration_s", "rig", "streams", "clocks", "place", "person", "objects", "task")
RIG_KEYS = ("fps", "width", "height", "camera_model", "intrinsics", "distortion", "fov_deg", "mount")
CONSENT_KEYS = ("subject_id", "scopes", "expires_at", "revoked_at")


class SessionError(ValueError):
    """A session that is not valid; ``path`` is the offending file, ``problem`` what is wrong."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def read_json_object(path: Path, error: type[ValueError] = SessionError) -> dict:
    """A JSON file that must hold an object; anything else raises ``error(path, problem)``."""
    if not path.exists():
        raise error(path, "file is missing")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(path, f"not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise error(path, "must hold a JSON object")
    return obj


def validate_meta(meta: dict, path: Path) -> None:
    missing = [k for k in SESSION_KEYS if k not in meta]
    if missing:
        raise SessionError(path, f"missing keys {missing}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise SessionError(path, f"schema_version {meta['schema_version']!r} is not supported (expected {SCHEMA_VERSION})")
    rig = meta["rig"]
    missing = [k for k in RIG_KEYS if k not in rig]
    if missing:
        raise SessionError(path, f"rig is missing {missing}")
    if not (isinstance(rig["fps"], (int, float)) and rig["fps"] > 0):
        raise SessionError(path, f"rig.fps must be a positive number, got {rig['fps']!r}")
    for k in ("fx", "fy", "cx", "cy"):
        v = rig["intrinsics"].get(k)
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            raise SessionError(path, f"rig.intrinsics.{k} must be a finite number, got {v!r}")
    for name, s in meta["streams"].items():
        if s.get("clock") not in meta["clocks"]:
            raise SessionError(path, f"stream {name!r} names clock {s.get('clock')!r}, which is not in 'clocks'")


def _iso_date(value: Any) -> dt.date | None:
    """The date of an ISO ``YYYY-MM-DD`` (or ISO date-time) string; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def validate_consent(consent: dict, path: Path) -> None:
    """Every key present and well-typed, so that no later reader has to guess what a record means."""
    missing = [k for k in CONSENT_KEYS if k not in consent]
    if missing:
        raise SessionError(path, f"missing keys {missing}")
    if not isinstance(consent["subject_id"], str) or not consent["subject_id"]:
        raise SessionError(path, f"subject_id must be a non-empty string, got {consent['subject_id']!r}")
    scopes = consent["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise SessionError(path, f"scopes must be a list of strings such as [\"research\"], got {scopes!r}")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise SessionError(path, f"unknown consent scopes {bad} (known: {list(SCOPES)})")
    for k in ("expires_at", "revoked_at"):
        v = consent[k]
        if v is not None and _iso_date(v) is None:
            raise SessionError(path, f"{k} must be an ISO date YYYY-MM-DD or null, got {v!r}")


def validate_table(table: pa.Table, name: str, path: Path) -> None:
    """Columns and types as the schema says, no NaN/inf, timestamps strictly increasing."""
    schema = STREAM_SCHEMAS[name]
    for f in schema:
        if f.name not in table.column_names:
            raise SessionError(path, f"missing column {f.name!r} (has {table.column_names})")
        got = table.schema.field(f.name).type
        if got != f.type and not (pa.types.is_floating(f.type) and pa.types.is_floating(got)):
            raise SessionError(path, f"column {f.name!r} has type {got}, expected {f.type}")
    if table.num_rows == 0:
        raise SessionError(path, "has no rows")
    for f in schema:
        col = table.column(f.name)
        if col.null_count:
            i = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise SessionError(path, f"column {f.name!r} has a null value (at row {i})")
    for f in schema:
        if f.name in ("t_ns", "side"):
            continue
        col = table.column(f.name)
        if pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type):
            col = pa.chunked_array([c.flatten() for c in col.chunks], type=col.type.value_type)
        values = col.to_numpy(zero_copy_only=False)
        if not np.all(np.isfinite(values)):
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise SessionError(path, f"column {f.name!r} has a NaN or infinite value (at element {i})")
    t = table.column("t_ns").to_numpy()
    groups = [("", t)]
    if "side" in table.column_names:
        side = np.asarray(table.column("side").to_pylist())
        bad = sorted(set(side) - {"left", "right"})
        if bad:
            raise SessionError(path, f"column 'side' has unknown values {bad}")
        groups = [(f" (side {s})", t[side == s]) for s in ("left", "right")]
    for label, ts in groups:
        d = np.diff(ts)
        if np.any(d <= 0):
            i = int(np.flatnonzero(d <= 0)[0])
            raise SessionError(path, f"t_ns is not strictly increasing{label} at row {i + 1} ({ts[i]} then {ts[i + 1]})")


def consent_status(consent: dict | None, use: str, today: dt.date | None = None) -> tuple[bool, str]:
    """Is a session with this consent record cleared for ``use`` (research | commercial) today?"""
    if use not in SCOPES:
        raise ValueError(f"use must be one of {SCOPES}, got {use!r}")
    today = today or dt.date.today()
    if consent is None:
        return False, "no consent record"
    if consent.get("revoked_at"):
        return False, f"consent revoked on {consent['revoked_at']}"
    if consent.get("expires_at"):
        expires = _iso_date(str(consent["expires_at"]))
        if expires is None:
            return False, f"consent expiry {consent['expires_at']!r} is not an ISO date"
        if expires < today:
            return False, f"consent expired on {consent['expires_at']}"
    if use not in consent.get("scopes", []):
        return False, f"scope '{use}' not granted (granted: {', '.join(consent.get('scopes', [])) or 'none'})"
    return True, "cleared"


def read_stream(path: str | Path, name: str) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise SessionError(path, "file is missing")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise SessionError(path, f"not a readable parquet file (truncated or corrupt?): {e}") from e
    validate_table(table, name, path)
    return table


@dataclass
class Session:
    """An opened, validated session. Streams are read lazily and cached."""

    path: Path
    meta: dict
    consent: dict | None
    video: dict = field(repr=False)
    _tables: dict[str, pa.Table] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.meta["session_id"]

    @property
    def fps(self) -> float:
        return float(self.meta["rig"]["fps"])

    @property
    def video_path(self) -> Path:
        return self.path / "video.mp4"

    @property
    def stream_names(self) -> list[str]:
        return list(self.meta["streams"])

    def stream_path(self, name: str) -> Path:
        return self.path / self.meta["streams"][name]["file"]

    def table(self, name: str) -> pa.Table:
        if name not in self.meta["streams"]:
            raise SessionError(self.path / "session.json", f"has no stream {name!r} (has {self.stream_names})")
        if name not in self._tables:
            self._tables[name] = read_stream(self.stream_path(name), name)
        return self._tables[name]

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """A stream as numpy columns (keypoints as (N, 21, 3))."""
        t = self.table(name)
        out = {}
        for c in t.column_names:
            col = t.column(c)
            if pa.types.is_fixed_size_list(col.type):
                out[c] = np.asarray(col.combine_chunks().flatten()).reshape(len(t), -1, 3)
            elif c == "side":
                out[c] = np.asarray(col.to_pylist())
            else:
                out[c] = col.to_numpy()
        return out

    @property
    def frame_times_ns(self) -> np.ndarray:
        return self.video["pts_ns"]


def open_session(path: str | Path, check_streams: bool = True) -> Session:
    """Open and validate a session folder; raises SessionError naming the file and the problem."""
    path = Path(path)
    if not path.is_dir():
        raise SessionError(path, "is not a session folder")
    meta = read_json_object(path / "session.json")
    validate_meta(meta, path / "session.json")
    consent_path = path / "consent.json"
    consent = None
    if consent_path.exists():
        consent = read_json_object(consent_path)
        validate_consent(consent, consent_path)
    try:
        video = probe(path / "video.mp4")
    except VideoError as e:
        raise SessionError(path / "video.mp4", str(e).split(": ", 1)[-1]) from e
    if video["frames"] == 0:
        raise SessionError(path / "video.mp4", "has no frames")
    if np.any(np.diff(video["pts_ns"]) <= 0):
        raise SessionError(path / "video.mp4", "frame timestamps are not strictly increasing")
    session = Session(path, meta, consent, video)
    if not any(s in meta["streams"] for s in HEAD_MOTION_STREAMS):
        raise SessionError(path / "session.json", f"has no head motion stream: needs one of {list(HEAD_MOTION_STREAMS)}")
    if check_streams:
        for name in session.stream_names:
            session.table(name)
    return session


def SessionWriter(out: str | Path) -> Any:  # noqa: N802  (used as ``with SessionWriter(out) as tmp``)
    """Build a session in a temporary sibling folder; on success validate it and rename it into place.

    ``with SessionWriter(out) as tmp: ...`` — write files under ``tmp`` (atomic helpers); an
    existing session at ``out`` is replaced only when the new one is complete and valid.
    """
    return atomic_dir(out, check=open_session)


def write_tables(root: Path, meta: dict, streams: dict[str, pa.Table]) -> None:
    """Validate and write each motion stream where ``meta["streams"]`` says it lives."""
    for name, table in streams.items():
        path = root / meta["streams"][name]["file"]
        validate_table(table, name, path)
        write_parquet(path, table)


def write_session(out: str | Path, meta: dict, consent: dict | None, streams: dict[str, pa.Table],
                  write_video_fn: Any, extra: dict[str, Any] | None = None) -> Path:
    """Write a whole session at once (importers); ``write_video_fn(path)`` writes the video,
    ``extra`` maps relative paths to JSON objects or Arrow tables."""
    with SessionWriter(out) as tmp:
        write_tables(tmp, meta, streams)
        write_json(tmp / "session.json", meta)
        if consent is not None:
            write_json(tmp / "consent.json", consent)
        write_video_fn(tmp / "video.mp4")
        for rel, obj in (extra or {}).items():
            (write_parquet if isinstance(obj, pa.Table) else write_json)(tmp / rel, obj)
    return Path(out)


# What identifies a session's recording: its metadata and its video. consent.json is left out on
# purpose — it is the one file that is meant to change after capture.
CONTENT_FILES = ("session.json", "video.mp4")
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """``sha256:<hex>`` of a file, cached per (path, size, mtime) within the process.

    The one file hash of the project: session content, episode files, checkpoints and policies."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = "sha256:" + h.hexdigest()
    return _HASH_CACHE[key]


def content_hash(path: str | Path) -> dict[str, str] | None:
    """Hashes of the files that identify a session (not its consent); None when one is missing."""
    path = Path(path)
    try:
        return {name: file_sha256(path / name) for name in CONTENT_FILES}
    except OSError:
        return None


def find_sessions(root: str | Path) -> list[Path]:
    """Session folders at or under ``root`` (a folder holding session.json), sorted."""
    root = Path(root)
    if (root / "session.json").exists():
        return [root]
    return sorted(p.parent for p in root.glob("*/session.json") if not p.parent.name.startswith("."))
