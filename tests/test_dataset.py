"""The episode store (LeRobot-v3 layout), the catalog and the clip loader, on the shared sim fixture."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import typer
from test_dataset_fixture import copy_data, synced_store_data
from typer.testing import CliRunner

from egoworld.actions import ACTION_DIM
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError, build_store
from egoworld.dataset.catalog import query
from egoworld.dataset.check import check_store
from egoworld.dataset.loader import ClipDataset, Split, make_loader
from egoworld.session import find_sessions


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the shared synced data (tests here may damage it freely)."""
    return copy_data(synced_store_data(tmp_path_factory), tmp_path_factory.mktemp("ds") / "data")


@pytest.fixture(scope="module")
def store(synced: Path) -> Path:
    r = build_store(synced, workers=2)
    not_failed = [s for s in r.sessions if s["sync"]["verdict"] != "failed"]
    assert r.episodes == len(not_failed) >= 3, "the 4-session fixture should give at least 3 synced episodes"
    assert all(s["excluded"].startswith("sync failed") for s in r.sessions if s["sync"]["verdict"] == "failed")
    return r.store


def _n(store: Path) -> int:
    return json.loads((store / L.INFO_PATH).read_text())["total_episodes"]


def test_store_passes_the_lerobot_layout_check(store: Path) -> None:
    assert check_store(store) == []
    info = json.loads((store / L.INFO_PATH).read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 30
    assert info["features"][L.VIDEO_KEY]["shape"] == [96, 96, 3]
    assert L.read_tasks(store / L.TASKS_PATH) == sorted(L.read_tasks(store / L.TASKS_PATH))
    eps = pq.read_table(store / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in eps] == list(range(_n(store)))
    assert all(e["place"].startswith("place_") and e["session_id"] and e["objects"] for e in eps)


def test_layout_check_catches_breakage(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(store, bad)
    info = json.loads((bad / L.INFO_PATH).read_text())
    info["total_frames"] += 1
    (bad / L.INFO_PATH).write_text(json.dumps(info))
    t = pq.read_table(bad / L.data_path(1))
    ts = t.column("timestamp").to_numpy().copy()
    ts[5] += 0.01  # a timestamp off the frame grid: LeRobot's video query would miss it
    t = t.set_column(t.column_names.index("timestamp"), "timestamp", __import__("pyarrow").array(ts))
    pq.write_table(t, bad / L.data_path(1))
    problems = check_store(bad)
    assert any("total_frames" in p for p in problems)
    assert any("timestamp" in p for p in problems)


def test_dropped_frames_are_filled_and_flagged(store: Path, synced: Path) -> None:
    total_dropped = 0
    for ep in range(_n(store)):
        t = pq.read_table(store / L.data_path(ep)).to_pydict()
        dropped = np.asarray(t["frame_dropped"])
        valid = np.asarray(t["action_valid"])
        assert not valid[dropped].any(), "a filled frame must not carry a valid action"
        assert np.allclose(np.asarray(t["timestamp"]), np.arange(len(dropped)) / 30, atol=1e-6)
        total_dropped += int(dropped.sum())
    sync_dropped = sum(len(json.loads(p.read_text())["video"]["dropped_frames"]) for p in (synced / "aligned").glob("*/sync.json")
                       if json.loads(p.read_text())["verdict"] != "failed")
    assert total_dropped == sync_dropped


def test_labels_come_from_task_progress_only(store: Path) -> None:
    t = pq.read_table(store / L.data_path(0))
    assert {"next.reward", "next.done", "next.success"} <= set(t.column_names)
    r = t.column("next.reward").to_numpy()
    assert 0.0 <= r.min() and r.max() <= 1.0
    assert not any(c.startswith(("object_", "sim_state", "t_true")) for c in t.column_names)


def test_catalog_answers_questions(store: Path) -> None:
    cols, rows = query(store.parent, "SELECT place, task_id, sum(length) AS frames FROM episodes GROUP BY ALL ORDER BY ALL")
    assert cols == ["place", "task_id", "frames"] and len(rows) == _n(store)
    assert sum(r[2] for r in rows) == json.loads((store / L.INFO_PATH).read_text())["total_frames"]
    _, rows = query(store, "SELECT count(*) FROM sessions WHERE sync_verdict IN ('ok', 'suspect')")
    assert rows[0][0] == _n(store)
    _, rows = query(store, "SELECT count(*) FROM sessions")
    assert rows[0][0] == 4
    _, rows = query(store, 'SELECT count(*), sum(CAST(frame_dropped AS INT)) FROM frames')
    assert rows[0][0] > 0


def test_catalog_has_the_columns_people_ask_for(store: Path) -> None:
    """task, frames and minutes by those names, in episodes and sessions alike (the README's tour asks for task)."""
    fps = json.loads((store / L.INFO_PATH).read_text())["fps"]
    _, rows = query(store, "SELECT task, task_id, frames, length, minutes, place, person FROM episodes")
    assert len(rows) == _n(store)
    for task, task_id, frames, length, minutes, place, person in rows:
        assert task == task_id and frames == length and minutes == pytest.approx(length / fps / 60)
        assert place.startswith("place_") and person.startswith("person_")
    _, rows = query(store, "SELECT task, task_id, frames, minutes, fps_declared FROM sessions")
    assert len(rows) == 4 and all(t == tid and m == pytest.approx(f / fps_ / 60) for t, tid, f, m, fps_ in rows)
    cols, rows = query(store, "SELECT place, task, sum(length) FROM episodes GROUP BY ALL")
    assert cols == ["place", "task", "sum(length)"]
    assert sum(r[2] for r in rows) == json.loads((store / L.INFO_PATH).read_text())["total_frames"]


def test_loader_contract(store: Path) -> None:
    ds = ClipDataset(store, T=8, size=32, split="all", seed=0)
    assert len(ds) > 0
    x = ds[0]
    assert x["image"].shape == (8, 3, 32, 32) and x["image"].dtype == torch.uint8
    assert x["action"].shape == (8, ACTION_DIM) and x["action"].dtype == torch.float32
    assert x["action_valid"].dtype == torch.bool and x["state"].shape == (8, 21)
    assert x["reward"].shape == (8,) and x["done"].dtype == torch.bool and bool(x["has_reward"])
    assert x["frame_index"].tolist() == list(range(int(x["frame_index"][0]), int(x["frame_index"][0]) + 8))
    st = ds.action_stats()
    assert st["mean"].shape == (ACTION_DIM,) and (st["std"] > 0).all()
    b = next(iter(make_loader(ds, batch_size=3, shuffle=True, seed=1)))
    assert b["image"].shape == (3, 8, 3, 32, 32) and b["episode_index"].shape == (3,)
    assert b["objects"].shape == (3, 8, 6)


def test_object_tracks_come_from_the_simulators_tracker(store: Path, synced: Path) -> None:
    """observation.objects is frame t's tracked object and goal (world frame), read from the truth's
    ``track`` column on the same frames as the labels; the store declares it."""
    info = json.loads((store / L.INFO_PATH).read_text())
    assert info["features"][L.OBJECTS_KEY]["shape"] == [6]
    rows = pq.read_table(store / "meta" / "episodes").to_pylist()
    t = pq.read_table(store / L.data_path(0))
    session = next(p for p in find_sessions(synced) if p.name == rows[0]["session_id"])
    truth = pq.read_table(session / "truth" / "frames.parquet", columns=["frame", "track"]).to_pylist()
    track = np.asarray(t.column(L.OBJECTS_KEY).to_pylist(), dtype=np.float32)
    for r in truth[:40:7]:
        assert np.allclose(track[r["frame"]], r["track"], atol=1e-6)
    ds = ClipDataset(store, T=8, size=32, split="all", seed=0)
    x = ds[0]
    f = x["frame_index"].numpy()
    assert np.allclose(x["objects"].numpy(), track[f])


def test_loader_frames_match_sequential_decode(store: Path) -> None:
    """Seek + partial decode gives exactly the frames a full sequential decode gives."""
    import av

    ds = ClipDataset(store, T=5, size=96, split="all", seed=3, cache=False, stride=7)
    ep = _n(store) - 1
    with av.open(str(store / L.video_path(ep))) as c:
        full = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for i in range(len(ds)):
        e, start = ds.windows()[i]
        if e != ep:
            continue
        got = ds[i]["image"].permute(0, 2, 3, 1).numpy()
        assert np.array_equal(got, np.stack(full[start:start + 5]))
    a = pq.read_table(store / L.data_path(ep)).column("action")
    ep2 = [i for i in range(len(ds)) if ds.windows()[i][0] == ep][0]
    start = ds.windows()[ep2][1]
    want = np.asarray(a.combine_chunks().flatten(), np.float32).reshape(-1, ACTION_DIM)[start:start + 5]
    assert np.array_equal(ds[ep2]["action"].numpy(), want)


def test_loader_is_deterministic_and_cache_is_transparent(store: Path) -> None:
    a = ClipDataset(store, T=6, size=24, split="all", seed=5, cache=True)
    b = ClipDataset(store, T=6, size=24, split="all", seed=5, cache=False)
    c = ClipDataset(store, T=6, size=24, split="all", seed=6)
    assert len(a) == len(b) == len(c)
    assert np.array_equal(a.windows(), b.windows())
    for i in range(0, len(a), 7):
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert not np.array_equal(a.windows(), c.windows()) or len(a) == 0
    order1 = [int(x["episode_index"][0]) * 10_000 + int(x["frame_index"][0, 0]) for x in make_loader(a, 4, True, seed=2)]
    order2 = [int(x["episode_index"][0]) * 10_000 + int(x["frame_index"][0, 0]) for x in make_loader(b, 4, True, seed=2)]
    assert order1 == order2
    n = len(a)
    a.set_epoch(1)
    assert len(a) == n


def test_splits_are_disjoint_and_cover(store: Path) -> None:
    places = {r["episode_index"]: r["place"] for r in pq.read_table(store / "meta/episodes/chunk-000/file-000.parquet").to_pylist()}
    sp = Split("train", held_out_places=(places[0],), val_fraction=0.34)
    parts = {k: set(ClipDataset(store, 4, 16, Split(k, sp.held_out_places, (), 0.34)).episode_indices)
             for k in ("train", "val", "heldout")}
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["heldout"])
    assert parts["train"] | parts["val"] | parts["heldout"] == set(range(_n(store)))
    assert all(places[e] == places[0] for e in parts["heldout"]) and parts["heldout"] and parts["val"]
    with pytest.raises(ValueError):
        Split("test")


def test_cli_episodes_and_query(synced: Path, tmp_path: Path) -> None:
    from egoworld.audit.cli import register as register_audit  # `query` shows the audit's verdicts
    from egoworld.dataset.cli import register

    app = typer.Typer()
    register(app)
    register_audit(app)

    @app.command("noop")
    def _noop() -> None:  # a second command, so typer keeps sub-command names
        pass

    r = CliRunner().invoke(app, ["episodes", str(synced), "--out", str(tmp_path / "st"), "--size", "48", "--gop", "8"])
    assert r.exit_code == 0, r.output
    assert check_store(tmp_path / "st") == []
    assert json.loads((tmp_path / "st" / L.INFO_PATH).read_text())["features"][L.VIDEO_KEY]["shape"] == [48, 48, 3]
    r = CliRunner().invoke(app, ["query", str(tmp_path / "st"), "SELECT count(*) AS n FROM episodes", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["n"] == _n(tmp_path / "st")
    r = CliRunner().invoke(app, ["query", str(tmp_path / "st"), "SELECT nope FROM episodes"])
    assert r.exit_code == 1 and "SQL error" in r.output


def test_query_prints_wide_results_one_block_per_row(store: Path) -> None:
    """A result whose columns fit is a table; SELECT * FROM sessions (dozens of columns) is one block per row,
    each column on its own line with its whole value; --csv is a header and one line per row."""
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    run = CliRunner().invoke
    r = run(app, ["query", str(store), "SELECT place, task, sum(length) FROM episodes GROUP BY ALL"], terminal_width=80)
    assert r.exit_code == 0, r.output
    groups = len(query(store, "SELECT DISTINCT place, task FROM episodes")[1])
    assert "┃ place" in r.output and "row 1" not in r.output and f"{groups} row(s)" in r.output
    cols, rows = query(store, "SELECT * FROM sessions")
    r = run(app, ["query", str(store), "SELECT * FROM sessions"], terminal_width=80)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert [ln.split()[:2] for ln in lines if ln.startswith("row ")] == [["row", str(i)] for i in range(1, len(rows) + 1)]
    assert max(len(ln.rstrip()) for ln in lines) <= 80 and "┃" not in r.output
    block = lines[1: next(i for i, ln in enumerate(lines) if ln.startswith("row 2"))]  # row 1: "name  value" lines
    first = dict((ln.split(maxsplit=1) + [""])[:2] for ln in block if not ln.startswith(" "))  # (wrapped values go on)
    first = {k: v.strip() for k, v in first.items()}
    assert set(cols) <= set(first) and first["session_id"] == rows[0][cols.index("session_id")]
    assert first["task"] == rows[0][cols.index("task_id")] and first["frames"] == str(rows[0][cols.index("frames")])
    r = run(app, ["query", str(store), "SELECT session_id, objects, minutes FROM sessions ORDER BY session_id", "--csv"])
    assert r.exit_code == 0, r.output
    got = list(csv.reader(io.StringIO(r.output)))
    want = query(store, "SELECT session_id, objects, minutes FROM sessions ORDER BY session_id")[1]
    assert got[0] == ["session_id", "objects", "minutes"] and len(got) == len(want) + 1
    assert [(g[0], json.loads(g[1]), float(g[2])) for g in got[1:]] == [(s, list(o), m) for s, o, m in want]


# ---------------------------------------------------------------- bad inputs: clear error, nothing half-written


def _copy(synced: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(synced, d, ignore=shutil.ignore_patterns("episodes"))
    return d


def _assert_nothing_written(d: Path) -> None:
    assert not (d / "episodes").exists()
    assert not [p for p in d.iterdir() if p.name.startswith(".episodes")]


def _left_out(d: Path) -> dict[str, str]:
    r = build_store(d)
    assert check_store(r.store) == [] and r.episodes >= 1  # the rest is built
    return {s["session_id"]: s["excluded"] for s in r.excluded}


def test_truncated_aligned_parquet_leaves_the_session_out_with_the_file(synced: Path, tmp_path: Path) -> None:
    d = _copy(synced, tmp_path)
    p = sorted((d / "aligned").glob("*/aligned.parquet"))[0]
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    why = _left_out(d)[p.parent.name]
    assert str(p) in why and "truncated or corrupt" in why
    assert not [q for q in d.iterdir() if q.name.startswith(".episodes")]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "truncated"])
def test_an_unreadable_video_leaves_the_session_out_with_the_file(synced: Path, tmp_path: Path, damage: str) -> None:
    d = _copy(synced, tmp_path)
    v = find_sessions(d)[0] / "video.mp4"
    if damage == "missing":
        v.unlink()
    elif damage == "corrupt":
        b = bytearray(v.read_bytes())
        b[len(b) // 3: len(b) // 3 + 4000] = bytes(4000)
        v.write_bytes(bytes(b))
    else:
        v.write_bytes(v.read_bytes()[: v.stat().st_size // 2])
    left = _left_out(d)
    assert v.parent.name in left, left
    assert "video.mp4" in left[v.parent.name] or damage == "corrupt", left
    assert not [q for q in d.iterdir() if q.name.startswith(".episodes")]


def test_missing_store_video_is_a_clear_error_in_the_loader(store: Path, tmp_path: Path) -> None:
    s = tmp_path / "st"
    shutil.copytree(store, s)
    (s / L.video_path(0)).unlink()
    ds = ClipDataset(s, T=4, size=16, split="all")
    i = next(i for i in range(len(ds)) if ds.windows()[i][0] == 0)
    with pytest.raises(DatasetError, match="video file is missing"):
        ds[i]


def test_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no episode store"):
        ClipDataset(tmp_path, T=4)


def test_motion_offset_and_place_filter_for_ablations(store: Path) -> None:
    """The sync ablation pairs frame i with motion row i + k; the single-place ablation keeps one place."""
    base = ClipDataset(store, 8, size=32, split="all", cache=False)
    shifted = ClipDataset(store, 8, size=32, split="all", cache=False, motion_offset=2)
    ep = base.episode_indices[0]
    a, b = base._arrays[ep], shifted._arrays[ep]
    assert np.array_equal(b["action"][:-2], a["action"][2:]) and np.array_equal(b["state"][5], a["state"][7])
    assert not b["action_valid"][-2:].any()  # past the end: repeated rows, not trusted
    assert np.array_equal(shifted.frames(ep, 0), base.frames(ep, 0))  # the video is untouched
    place = base.episodes.column("place")[0].as_py()
    one = ClipDataset(store, 8, size=32, split="all", cache=False, places=[place])
    assert set(one.episodes.column("place").to_pylist()) == {place}
    with pytest.raises(ValueError, match="no episodes from place"):
        ClipDataset(store, 8, size=32, split="all", cache=False, places=["nowhere"])
