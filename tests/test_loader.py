"""The clip loader's fast paths give the frames the plain path gives, and stores whose files hold
several episodes (LeRobot's ``merge_datasets`` layout) read as the one-file-per-episode store."""
from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from test_dataset_fixture import synced_store_data

from egoworld.dataset import layout as L
from egoworld.dataset.check import check_store
from egoworld.dataset.loader import ClipDataset, VideoReader, collate, make_loader
from egoworld.dataset.store import open_store

KEY = L.VIDEO_KEY


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_store_data(tmp_path_factory) / "episodes"  # read only here


def _plain(path: Path, size: int) -> list[np.ndarray]:
    """Every frame as ``frame.reformat`` makes it, one converter per frame (the path it replaces)."""
    with av.open(str(path)) as c:
        return [f.reformat(width=size, height=size, format="rgb24", interpolation="AREA").to_ndarray()
                for f in c.decode(video=0)]


@pytest.mark.parametrize("size", [96, 40])  # 96: the stored size (planar copy); 40: scaled (packed + transpose)
def test_reused_converter_gives_the_plain_pixels(store: Path, size: int) -> None:
    s = open_store(store)
    for cache in (True, False):
        ds = ClipDataset(store, T=7, size=size, split="all", seed=1, cache=cache, stride=5)
        plain = {}
        for i in range(len(ds)):
            ep, start = (int(x) for x in ds.windows()[i])
            if ep not in plain:
                plain[ep] = np.stack(_plain(s.video_file(ep), size)).transpose(0, 3, 1, 2)
            assert np.array_equal(ds[i]["image"].numpy(), plain[ep][start:start + 7]), (cache, ep, start)
    # the reader handing frames to a dict (as other rooms use it) gives the same pixels
    out: dict[int, np.ndarray] = {}
    r = VideoReader(s.video_file(0), s.fps, size)
    r.read(20, 30, out)
    r.read(31, 33, out)  # goes on from where the decoder stands
    r.read(3, 5, out)  # back: seeks
    want = _plain(s.video_file(0), size)
    assert {3, 4, 31, 32} | set(range(20, 30)) <= set(out)  # and what was decoded on the way
    assert all(np.array_equal(out[i], want[i]) for i in out)


def test_cache_decodes_each_group_of_pictures_once(store: Path) -> None:
    ds = ClipDataset(store, T=8, size=24, split="all", seed=2)
    order = np.random.default_rng(0).permutation(len(ds))
    first = [ds[int(i)]["image"] for i in order]
    decoded = sum(r.decoded for r in ds._readers.values())
    frames = sum(ds._arrays[ep]["length"] for ep in ds.episode_indices)
    assert decoded <= frames  # each frame at most once over a shuffled epoch
    again = [ds[int(i)]["image"] for i in order]  # second epoch: from memory, the same pixels
    assert sum(r.decoded for r in ds._readers.values()) == decoded
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_collate_matches_default_collate(store: Path) -> None:
    from torch.utils.data import default_collate

    ds = ClipDataset(store, T=4, size=16, split="all", seed=0)
    items = [ds[i] for i in range(3)]
    a, b = collate(items), default_collate(items)
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    batch = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    assert torch.equal(batch["image"], b["image"])


def _duration(path: Path) -> float:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * Fraction(s.time_base))


def _concat_videos(paths: list[Path], out: Path) -> None:
    """What LeRobot's ``concatenate_video_files`` does: FFmpeg's concat demuxer, packets copied."""
    listing = out.with_suffix(".ffconcat")
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in paths))
    with av.open(str(listing), format="concat", options={"safe": "0"}) as src, av.open(str(out), "w") as dst:
        s = src.streams.video[0]
        o = dst.add_stream_from_template(template=s, opaque=True)
        o.time_base = s.time_base
        for packet in src.demux(s):
            if packet.dts is None:
                continue
            packet.stream = o
            dst.mux(packet)
    listing.unlink()


def merge_into_one_file(store: Path, out: Path) -> Path:
    """The store re-laid as LeRobot's ``merge_datasets`` lays it: every episode's rows in one data
    file and every episode's frames in one mp4, ``from_timestamp`` the running video duration."""
    s = open_store(store)
    shutil.copytree(store / "meta", out / "meta")
    n = len(s.episodes)
    data = pa.concat_tables([pq.read_table(s.data_file(ep)) for ep in range(n)])
    (out / "data/chunk-000").mkdir(parents=True)
    pq.write_table(data, out / "data/chunk-000/file-000.parquet")
    vdir = out / f"videos/{KEY}/chunk-000"
    vdir.mkdir(parents=True)
    _concat_videos([s.video_file(ep) for ep in range(n)], vdir / "file-000.mp4")
    starts = np.concatenate([[0.0], np.cumsum([_duration(s.video_file(ep)) for ep in range(n)])])[:-1]
    lengths = np.asarray(s.episodes.column("length").to_pylist())
    eps = s.episodes
    for col, values in (("data/file_index", np.zeros(n, np.int64)), (f"videos/{KEY}/file_index", np.zeros(n, np.int64)),
                        (f"videos/{KEY}/from_timestamp", starts),
                        (f"videos/{KEY}/to_timestamp", starts + lengths / s.fps)):
        i = eps.column_names.index(col)
        eps = eps.set_column(i, col, pa.array(values, eps.schema.field(col).type))
    for p in (out / "meta/episodes").glob("*/*.parquet"):
        p.unlink()
    pq.write_table(eps, out / "meta/episodes/chunk-000/file-000.parquet")
    return out


def test_a_store_merged_into_one_file_reads_as_the_original(store: Path, tmp_path: Path) -> None:
    merged = merge_into_one_file(store, tmp_path / "merged")
    assert len(list((merged / "data").glob("*/*.parquet"))) == 1
    assert len(list((merged / "videos").glob("*/*/*.mp4"))) == 1
    assert check_store(merged, decode_videos=True) == []  # a valid v3 store, as LeRobot reads it
    m = open_store(merged)
    assert all(m.episode_problem(ep) is None for ep in range(len(m.episodes)))
    for cache in (True, False):
        a = ClipDataset(store, T=6, size=32, split="all", seed=4, cache=cache)
        b = ClipDataset(merged, T=6, size=32, split="all", seed=4, cache=cache)
        assert np.array_equal(a.windows(), b.windows())
        for i in np.random.default_rng(1).permutation(len(a)):
            x, y = a[int(i)], b[int(i)]
            assert all(torch.equal(x[k], y[k]) for k in x), (cache, int(i))
    # the dream's start reader (columns and frames of one episode) reads the same episode from either layout
    from egoworld.imagine.dream import WindowReader

    ra, rb = WindowReader(open_store(store), 32), WindowReader(m, 32)
    for ep in range(len(m.episodes)):
        ca, cb = ra.episode(ep), rb.episode(ep)
        assert all(np.array_equal(ca[k], cb[k], equal_nan=True) for k in ca), ep
        assert np.array_equal(ra.frames(ep, 2, 5), rb.frames(ep, 2, 5)), ep
    ra.close()
    rb.close()
    # the audit reads each episode's own rows and finds the shared files whole (store_files "ok")
    from egoworld.audit.audit import run_audit

    au, am = run_audit(store), run_audit(merged)
    assert am["_motion_samples"] == au["_motion_samples"] and am["coverage"]["behaviour"] == au["coverage"]["behaviour"]
    assert [r["store_files"] for r in am["rights"]] == [r["store_files"] for r in au["rights"]] == ["ok"] * len(au["rights"])
    # rows that do not add up are still an error naming the file (a whole episode's rows dropped)
    t = pq.read_table(merged / "data/chunk-000/file-000.parquet")
    keep = pa.array(t.column("episode_index").to_numpy() != 1)
    pq.write_table(t.filter(keep), merged / "data/chunk-000/file-000.parquet")
    with pytest.raises(Exception, match=r"file-000\.parquet.*0 rows of episode 1, meta/episodes says"):
        ClipDataset(merged, T=6, size=32, split="all")
    assert "rows, meta/episodes says" in (open_store(merged).episode_problem(1) or "")
    info = json.loads((merged / L.INFO_PATH).read_text())
    assert info["total_episodes"] == len(m.episodes)


def test_a_store_rewritten_by_lerobots_split_or_delete_reads(store: Path, tmp_path: Path) -> None:
    """LeRobot's split/delete tools write tasks.parquet with an unnamed pandas index and keep only
    LeRobot's columns of meta/episodes: the store still checks and loads (split 'all'), and asking
    for a split it cannot make says why."""
    out = tmp_path / "rewritten"
    shutil.copytree(store, out)
    shutil.rmtree(out / L.OURS)
    t = pq.read_table(out / L.TASKS_PATH)
    meta = json.loads(t.schema.metadata[b"pandas"])
    meta["index_columns"] = ["__index_level_0__"]
    for c in meta["columns"]:
        if c["name"] == "task":
            c["name"], c["field_name"] = None, "__index_level_0__"
    t = t.rename_columns(["task_index", "__index_level_0__"]).replace_schema_metadata({b"pandas": json.dumps(meta).encode()})
    pq.write_table(t, out / L.TASKS_PATH)
    eps = pq.read_table(store / "meta/episodes/chunk-000/file-000.parquet")
    lerobot_cols = [c for c in eps.column_names if c in ("episode_index", "tasks", "length", "dataset_from_index",
                                                         "dataset_to_index") or c.startswith(("data/", "videos/"))]
    pq.write_table(eps.select(lerobot_cols), out / "meta/episodes/chunk-000/file-000.parquet")
    assert check_store(out, decode_videos=False) == []
    assert open_store(out).tasks == open_store(store).tasks
    a = ClipDataset(store, T=5, size=24, split="all", seed=3)
    b = ClipDataset(out, T=5, size=24, split="all", seed=3)
    assert np.array_equal(a.windows(), b.windows())
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["action"], b[1]["action"])
    with pytest.raises(Exception, match="no provenance columns"):
        ClipDataset(out, T=5, size=24, split="train")
