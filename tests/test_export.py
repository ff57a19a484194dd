"""Rights-gated export: only cleared episodes, a valid LeRobot layout, nothing half-written."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from test_dataset_fixture import copy_data, synced_store_data
from typer.testing import CliRunner

from egoworld.audit.export import decide, export
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError, build_store
from egoworld.dataset.check import check_store
from egoworld.dataset.loader import ClipDataset
from egoworld.dataset.store import open_store
from egoworld.session import find_sessions


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = copy_data(synced_store_data(tmp_path_factory), tmp_path_factory.mktemp("export") / "data")
    sessions = find_sessions(d)
    # give the sessions different consent: full, research-only, expired, none
    kinds = [None, {"scopes": ["research"]}, {"expires_at": "2020-01-01"}, "none"]
    for p, k in zip(sessions, kinds):
        c = json.loads((p / "consent.json").read_text())
        if k == "none":
            (p / "consent.json").unlink()
        elif k:
            c.update(k)
            (p / "consent.json").write_text(json.dumps(c))
    build_store(d, workers=2)  # rebuild: the store's consent copies follow the edited records
    return d


@pytest.mark.parametrize("use", ["research", "commercial"])
def test_export_writes_exactly_the_cleared(data: Path, tmp_path: Path, lenient: Path, use: str) -> None:
    decisions = decide(data, use, lenient)
    cleared = {d["session_id"] for d in decisions if d["cleared"]}
    rec = export(data, use, tmp_path / "out", spec_path=lenient)
    assert set(rec["session_ids"]) == cleared
    assert {x["session_id"] for x in rec["excluded"]} == {d["session_id"] for d in decisions} - cleared
    for x in rec["excluded"]:
        assert x["reasons"], "every exclusion says why"
    if rec["episodes"]:
        assert check_store(tmp_path / "out") == []
        ex = open_store(tmp_path / "out")
        assert {r["session_id"] for r in ex.episode_rows()} == cleared
        assert len(ClipDataset(tmp_path / "out", T=4, size=16, split="all")) > 0
    log = json.loads((open_store(data).root / L.EXPORTS_PATH).read_text())["exports"]
    assert log[-1]["out"] == str((tmp_path / "out").resolve())


def test_export_carries_no_local_paths(data: Path, tmp_path: Path, lenient: Path) -> None:
    """What is shipped names its source and spec and hashes them; no path of this machine in it."""
    rec = export(data, "research", tmp_path / "out", spec_path=lenient)
    assert rec["episodes"] > 0
    local = [str(tmp_path), str(data.resolve()), str(Path(lenient).resolve().parent)]
    for f in (tmp_path / "out" / "meta").rglob("*.json"):
        text = f.read_text()
        assert not any(p in text for p in local), f"{f} holds a local path"
    rec = json.loads((tmp_path / "out" / L.EXPORT_RECORD_PATH).read_text())
    assert rec["out"] == "out" and rec["spec"]["sha256"].startswith("sha256:")
    assert rec["source"]["store"].endswith("/episodes")
    assert open_store(tmp_path / "out").sessions[0].get("path")  # found again through the relative path


def test_export_reasons(data: Path, lenient: Path) -> None:
    d = {x["session_id"]: x for x in decide(data, "commercial", lenient)}
    reasons = " | ".join(r for x in d.values() for r in x["reasons"])
    assert "scope 'commercial' not granted" in reasons
    assert "expired" in reasons
    assert "no consent record" in reasons


def test_export_cli_prints_what_it_left_out(data: Path, tmp_path: Path, lenient: Path) -> None:
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["export", str(data), "--use", "commercial", "--out", str(tmp_path / "o"), "--spec", str(lenient)])
    assert r.exit_code == 0, r.output
    assert "left out" in r.output and "exported" in r.output
    r = CliRunner().invoke(app, ["export", str(data), "--use", "commercial", "--out", str(tmp_path / "o"), "--spec", str(lenient)])
    assert r.exit_code == 2 and "already exists" in " ".join(r.output.split())


def test_export_of_a_damaged_store_writes_nothing(data: Path, tmp_path: Path, lenient: Path) -> None:
    d = copy_data(data, tmp_path / "data")
    store = open_store(d)
    cleared = [x for x in decide(d, "research", lenient) if x["cleared"]]
    if not cleared:
        pytest.skip("no episode cleared for research in this fixture")
    ep = cleared[0]["episode_index"]
    p = store.root / L.data_path(ep)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        export(d, "research", tmp_path / "out", spec_path=lenient)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    shutil.copy2(data / "episodes" / L.data_path(ep), p)
    (store.root / L.video_path(ep)).unlink()
    with pytest.raises(DatasetError, match="video file is missing"):
        export(d, "research", tmp_path / "out", spec_path=lenient)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_export_of_a_truncated_video_names_it(data: Path, tmp_path: Path, lenient: Path) -> None:
    d = copy_data(data, tmp_path / "data")
    cleared = [x for x in decide(d, "research", lenient) if x["cleared"]]
    if not cleared:
        pytest.skip("no episode cleared for research in this fixture")
    v = open_store(d).root / L.video_path(cleared[0]["episode_index"])
    v.write_bytes(v.read_bytes()[: v.stat().st_size // 2])
    from egoworld.audit.audit import run_audit

    rights = {r["session_id"]: r for r in run_audit(d, lenient)["rights"]}
    r = rights[cleared[0]["session_id"]]
    assert not r["usable_research"] and any("store file damaged" in x and str(v) in x for x in r["usable_research_reasons"])
    with pytest.raises(DatasetError, match="truncated or corrupt|decodable frames") as e:
        export(d, "research", tmp_path / "out", spec_path=lenient)
    assert e.value.path == v
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_a_killed_export_or_build_leaves_nothing_the_next_run_keeps(data: Path, tmp_path: Path, lenient: Path) -> None:
    """kill -9 in the middle of writing: the next run of the same command removes the leftovers."""
    import subprocess
    import sys

    d = copy_data(data, tmp_path / "data")
    for target in (tmp_path / "out", d / "episodes"):
        code = ("import os, sys; from egoworld._atomic import temp_dir_beside; "
                "t = temp_dir_beside(sys.argv[1]); (t / 'half').write_text('x'); os.kill(os.getpid(), 9)")
        r = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, timeout=60)
        assert r.returncode == -9
        assert list(target.parent.glob(f".{target.name}.*"))
    export(d, "research", tmp_path / "out", spec_path=lenient)
    assert not list(tmp_path.glob(".out.*"))
    build_store(d, workers=1)
    assert not list(d.glob(".episodes.*"))
