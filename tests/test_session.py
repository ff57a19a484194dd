"""Reading a session validates it; bad input names the file and the problem; writes are atomic."""
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egoworld.session import SessionError, consent_status, open_session, write_session


@pytest.fixture
def session(sim_data: Path, tmp_path: Path) -> Path:
    src = sorted(p for p in sim_data.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_valid_session_opens(session):
    s = open_session(session)
    assert s.fps == 30.0
    assert set(s.stream_names) == {"head_pose", "imu", "hands"}
    assert s.video["codec"] == "h264" and s.video["frames"] > 100
    hands = s.arrays("hands")
    assert hands["keypoints"].shape[1:] == (21, 3)
    assert set(hands["side"]) == {"left", "right"}


def _expect(session: Path, file: str, words: str):
    with pytest.raises(SessionError) as e:
        open_session(session)
    assert e.value.path.name == file, e.value
    assert words in str(e.value), str(e.value)


def test_corrupted_video(session):
    data = bytearray((session / "video.mp4").read_bytes())
    (session / "video.mp4").write_bytes(b"\x00" * 64 + data[64 : len(data) // 3])
    _expect(session, "video.mp4", "video")


def test_missing_video(session):
    (session / "video.mp4").unlink()
    _expect(session, "video.mp4", "missing")


def test_truncated_parquet(session):
    p = session / "motion" / "imu.parquet"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    _expect(session, "imu.parquet", "not a readable parquet")


def test_nan_in_stream(session):
    p = session / "motion" / "head_pose.parquet"
    t = pq.read_table(p)
    px = t.column("px").to_numpy().copy()
    px[10] = np.nan
    pq.write_table(t.set_column(t.schema.get_field_index("px"), "px", pa.array(px)), p)
    _expect(session, "head_pose.parquet", "NaN")


def test_nan_in_keypoints(session):
    p = session / "motion" / "hands.parquet"
    t = pq.read_table(p)
    kp = np.asarray(t.column("keypoints").combine_chunks().flatten()).copy()
    kp[100] = np.nan
    col = pa.FixedSizeListArray.from_arrays(pa.array(kp), 63)
    pq.write_table(t.set_column(t.schema.get_field_index("keypoints"), "keypoints", col), p)
    _expect(session, "hands.parquet", "'keypoints' has a NaN")


def test_non_monotonic_timestamps(session):
    p = session / "motion" / "imu.parquet"
    t = pq.read_table(p)
    ts = t.column("t_ns").to_numpy().copy()
    ts[50], ts[51] = ts[51], ts[50]
    pq.write_table(t.set_column(0, "t_ns", pa.array(ts)), p)
    _expect(session, "imu.parquet", "not strictly increasing")


def test_null_timestamp_is_caught(session):
    p = session / "motion" / "head_pose.parquet"
    t = pq.read_table(p)
    ts = t.column("t_ns").to_pylist()
    ts[7] = None
    pq.write_table(t.set_column(0, "t_ns", pa.array(ts, pa.int64())), p)
    _expect(session, "head_pose.parquet", "column 't_ns' has a null value (at row 7)")


def test_missing_column(session):
    p = session / "motion" / "imu.parquet"
    pq.write_table(pq.read_table(p).drop(["gz"]), p)
    _expect(session, "imu.parquet", "missing column 'gz'")


def test_bad_session_json(session):
    (session / "session.json").write_text("{not json")
    _expect(session, "session.json", "not valid JSON")
    meta = {"schema_version": 1}
    (session / "session.json").write_text(json.dumps(meta))
    _expect(session, "session.json", "missing keys")


def test_failed_write_leaves_old_session_intact(session):
    before = {p.relative_to(session): p.read_bytes() for p in session.rglob("*") if p.is_file()}
    s = open_session(session)
    streams = {n: s.table(n) for n in s.stream_names}

    def broken_video(path):
        path.write_bytes(b"half a video")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_session(session, s.meta, s.consent, streams, broken_video)
    after = {p.relative_to(session): p.read_bytes() for p in session.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in session.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_rewrite_replaces_atomically(session, tmp_path):
    s = open_session(session)
    streams = {n: s.table(n) for n in s.stream_names}
    meta = dict(s.meta, notes="rewritten")
    write_session(session, meta, s.consent, streams, lambda p: shutil.copy(s.video_path, p))
    assert open_session(session).meta["notes"] == "rewritten"


def test_consent_status():
    c = {"subject_id": "x", "scopes": ["research"], "expires_at": "2030-01-01", "revoked_at": None}
    assert consent_status(c, "research")[0]
    ok, why = consent_status(c, "commercial")
    assert not ok and "commercial" in why
    assert not consent_status(dict(c, revoked_at="2026-01-01"), "research")[0]
    assert not consent_status(dict(c, expires_at="2020-01-01"), "research")[0]
    assert not consent_status(None, "research")[0]
