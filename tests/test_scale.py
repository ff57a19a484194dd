"""Scale-out: ingest on a Ray cluster equals the local build; without --ray, Ray is never imported;
training ranks read only their own shard of episodes (the torchrun equality is in test_train)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egoworld.cli import app

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ["capture", "sim", "--sessions", "9", "--places", "2", "--people", "2", "--seconds", "6", "--width", "64",
           "--height", "64", "--seed", "5", "--tasks", "push,stack"]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs whose workers import this checkout's egoworld."""
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _json(path: Path, root: Path, drop: tuple[str, ...] = ("timing", "generated_at")) -> object:
    """A JSON file with the data folder's path made relative and the wall-clock fields dropped."""
    obj = json.loads(path.read_text().replace(str(root), "DATA"))

    def strip(x: object) -> object:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(obj)


def _same_tree(a: Path, b: Path, root_a: Path, root_b: Path) -> None:
    """Every file of a equals b's: byte for byte, JSON up to the data folder's path and the times."""
    assert _files(a) == _files(b)
    for rel in _files(a):
        fa, fb = a / rel, b / rel
        if rel.endswith(".json"):
            assert _json(fa, root_a) == _json(fb, root_b), rel
        elif rel.endswith(".html"):
            continue  # the report embeds the audit's time
        else:
            assert fa.read_bytes() == fb.read_bytes(), rel


def test_ray_ingest_equals_the_local_build(cluster, tmp_path):
    """capture sim, sync, episodes and audit with --ray over 9 sessions (one made unreadable) give the
    local build's files: aligned episodes, the store's data, videos and meta, and the audit."""
    from egoworld.capture.sim.record import capture_session, plan_sessions

    runner = CliRunner()
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    r = runner.invoke(app, CAPTURE + ["--out", str(on_ray), "--ray"])
    assert r.exit_code == 0, r.output
    sessions = sorted(p.name for p in on_ray.iterdir())
    assert len(sessions) == 9
    # a session captured by a Ray task is the one a local process captures
    cfg = plan_sessions(9, 2, 2, ["push", "stack"], 5, seconds=6.0, width=64, height=64)[4]
    capture_session(tmp_path / "one", cfg)
    _same_tree(tmp_path / "one" / cfg.session_id, on_ray / cfg.session_id, tmp_path / "one", on_ray)

    shutil.copytree(on_ray, local)
    broken = sessions[2]
    for data in (on_ray, local):
        (data / broken / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")

    for data, extra in ((local, ["--workers", "2"]), (on_ray, ["--ray"])):
        r = runner.invoke(app, ["sync", str(data), *extra])
        assert r.exit_code == 1, r.output  # one session failed, and only that one
        assert sum(json.loads((data / "aligned" / s / "sync.json").read_text())["verdict"] == "failed" for s in sessions) == 1
        r = runner.invoke(app, ["episodes", str(data), *extra])
        assert r.exit_code == 0, r.output
        assert f"left out {broken}" in r.output.replace("\n", " ")
        r = runner.invoke(app, ["audit", str(data), *(["--ray"] if data == on_ray else [])])
        assert r.exit_code == 0, r.output

    _same_tree(local / "aligned", on_ray / "aligned", local, on_ray)
    _same_tree(local / "episodes", on_ray / "episodes", local, on_ray)
    assert _json(local / "audit.json", local) == _json(on_ray / "audit.json", on_ray)
    store = json.loads((on_ray / "episodes" / "meta" / "egoworld" / "sessions.json").read_text())["sessions"]
    left_out = [s for s in store if s["episode_index"] is None]
    assert [s["session_id"] for s in left_out] == [broken]
    assert "video.mp4" in left_out[0]["excluded"]  # the reason names the file
    assert sum(s["episode_index"] is not None for s in store) == 8


def test_ray_import_of_a_folder_equals_local(cluster, tmp_path):
    """``import camera FOLDER --ray``: one session per clip, as a local import writes them; a clip that is
    not a recording is reported with its file and left out."""
    from egoworld.sync.synthetic import SynthConfig, make_session
    from tests.fixtures_import import build

    folder = tmp_path / "clips"
    folder.mkdir()
    for k in range(2):
        src = make_session(tmp_path / f"src{k}", SynthConfig(seed=30 + k, seconds=3.0))
        build.gopro_mp4(src, folder / f"GX0{k}.MP4")
    (folder / "GX09.MP4").write_bytes(b"not a video")
    runner = CliRunner()
    for out, extra in ((tmp_path / "local", []), (tmp_path / "ray", ["--ray"])):
        r = runner.invoke(app, ["import", "camera", str(folder), "--out", str(out), "--hfov", "70", *extra])
        assert r.exit_code == 1, r.output
        assert sorted(p.name for p in out.iterdir()) == ["GX00", "GX01"]
        assert "GX09.MP4" in r.output
    _same_tree(tmp_path / "local", tmp_path / "ray", tmp_path / "local", tmp_path / "ray")


def test_without_ray_the_cli_never_imports_ray(tmp_path, tmp_path_factory):
    """capture, sync, episodes and audit run as before and ``ray`` stays out of ``sys.modules``."""
    from test_dataset_fixture import copy_data, synced_store_data

    data = copy_data(synced_store_data(tmp_path_factory), tmp_path / "data")
    one = sorted(p.parent for p in data.glob("*/session.json"))[0]
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom egoworld.cli import app\nrun = CliRunner().invoke\n"
        f"out = [run(app, ['capture', 'sim', '--out', {str(tmp_path / 'cap')!r}, '--sessions', '1', '--seconds', '1',"
        " '--width', '32', '--height', '32']).exit_code,\n"
        f"       run(app, ['sync', {str(one)!r}, '--out', {str(tmp_path / 'aligned')!r}]).exit_code,\n"
        f"       run(app, ['episodes', {str(data)!r}]).exit_code, run(app, ['audit', {str(data)!r}, '--no-html']).exit_code]\n"
        "print(out, 'ray' in sys.modules, 'egoworld.cluster' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    codes, ray_loaded, cluster_loaded = r.stdout.strip().splitlines()[-1].rsplit(" ", 2)
    assert json.loads(codes)[0] == 0 and json.loads(codes)[2:] == [0, 0], r.stdout[-2000:]
    assert cluster_loaded == "True" and ray_loaded == "False"  # the --ray help is there, Ray itself is not


def test_training_ranks_read_only_their_own_episodes(tmp_path_factory):
    """Two ranks agree on the clip index, split the episodes between them, read only their own and give
    the unsharded clips."""
    import torch

    from test_dataset_fixture import synced_store_data

    from egoworld.dataset.loader import ClipDataset

    data = synced_store_data(tmp_path_factory)
    whole = ClipDataset(data, T=8, size=32, split="all", stride=4)
    parts = [ClipDataset(data, T=8, size=32, split="all", stride=4, shard=(r, 2)) for r in range(2)]
    for p in parts:
        assert (p.windows() == whole.windows()).all() and p.owner == parts[0].owner
    mine = [set(p._arrays) for p in parts]
    assert mine[0] and mine[1] and not mine[0] & mine[1] and mine[0] | mine[1] == set(whole._arrays)
    for i in range(len(whole)):
        r = parts[0].owner_of(i)
        item = parts[r][i]
        assert torch.equal(item["image"], whole[i]["image"]) and torch.equal(item["action"], whole[i]["action"])
        with pytest.raises(IndexError, match="reads, not this one"):
            parts[1 - r][i]
    for p, own in zip(parts, mine):  # the videos each rank opened and the frames it holds: its own episodes only
        assert set(p._readers) <= own and set(p._cache.eps) == own
        p.close()
    whole.close()


def test_ray_takes_an_optional_address(monkeypatch, tmp_path):
    """``--ray`` bare (last, or before another option) means Ray's default; ``--ray ADDRESS`` passes it on."""
    import egoworld.sync.batch as sync_batch

    seen = []
    monkeypatch.setattr(sync_batch, "sync_folder", lambda data, out, workers, ray: seen.append((workers, ray)) or 0)
    runner = CliRunner()
    for args in (["--ray"], ["--ray", "--workers", "3"], ["--ray", "auto"], ["--ray", "head:6379", "--workers", "2"], []):
        assert runner.invoke(app, ["sync", str(tmp_path), *args]).exit_code == 0
    assert seen == [(1, ""), (3, ""), (1, "auto"), (2, "head:6379"), (1, None)]
