"""Rights that cannot be bypassed: live consent wherever the data has moved, a trail that survives
rebuilds, revocation that reaches models, and consent files that are checked before they are trusted."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dataset_fixture import synced_store_data
from typer.testing import CliRunner

from egoworld.audit.audit import run_audit
from egoworld.audit.export import export
from egoworld.audit.rights import revoke
from egoworld.dataset import layout as L
from egoworld.dataset.build import DatasetError, build_store
from egoworld.dataset.store import open_store
from egoworld.session import SessionError, consent_status, find_sessions, open_session

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA built the way a user types it (``egoworld episodes data`` from the data's parent), then
    renamed: the absolute paths of the build are gone, as after any move of the data."""
    parent = tmp_path_factory.mktemp("rights")
    src = synced_store_data(tmp_path_factory)
    (parent / "staging").mkdir()
    shutil.copytree(src, parent / "staging" / "data", ignore=shutil.ignore_patterns("episodes"))
    old = os.getcwd()
    os.chdir(parent / "staging")
    try:
        build_store(Path("data"), workers=2)
    finally:
        os.chdir(old)
    return (parent / "staging" / "data").rename(parent / "data")


def copy_data(src: Path, dst: Path) -> Path:
    """A plain copy, as a user would make one: the store's records are not touched."""
    shutil.copytree(src, dst)
    return dst


def _edit(folder: Path, how: str) -> None:
    p = folder / "consent.json"
    c = json.loads(p.read_text())
    if how == "delete":
        p.unlink()
        return
    if how == "research_only":
        c["scopes"] = ["research"]
    elif how == "commercial_only":
        c["scopes"] = ["commercial"]
    elif how == "expired":
        c["expires_at"] = "2020-01-01"
    elif how == "revoked":
        c["revoked_at"] = "2021-05-05"
    p.write_text(json.dumps(c))


def _cli() -> typer.Typer:
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    return app


# ---------------------------------------------------------------- 1. live consent, wherever the data is


def test_export_reads_live_consent_not_the_copy_saved_at_build(built: Path, tmp_path: Path, lenient: Path) -> None:
    """The reported repro: built from the data's parent with a relative path, consent edited and
    deleted afterwards, export and audit run from another folder."""
    d = copy_data(built, tmp_path / "data")
    sessions = find_sessions(d)
    _edit(sessions[0], "research_only")
    _edit(sessions[1], "delete")
    old = os.getcwd()
    os.chdir("/")
    try:
        rec = export(d, "commercial", tmp_path / "x", spec_path=lenient)
        audit = run_audit(d, lenient)
    finally:
        os.chdir(old)
    assert not {sessions[0].name, sessions[1].name} & set(rec["session_ids"])
    why = {x["session_id"]: " ".join(x["reasons"]) for x in rec["excluded"]}
    assert "scope 'commercial' not granted" in why[sessions[0].name]
    assert "no consent record" in why[sessions[1].name] and "consent.json" in why[sessions[1].name]
    rights = {r["session_id"]: r for r in audit["rights"]}
    assert not rights[sessions[0].name]["usable_commercial"] and not rights[sessions[1].name]["usable_commercial"]
    assert audit["summary"]["usable_commercial"] == len(rec["session_ids"])


def test_moved_data_is_found_and_a_stranger_under_the_same_name_is_not(built: Path, tmp_path: Path, lenient: Path) -> None:
    d = copy_data(built, tmp_path / "a" / "data")
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    d.rename(moved)
    rec = export(moved, "research", tmp_path / "x", spec_path=lenient)
    assert rec["episodes"] >= 1, rec["excluded"]  # found again through the store-relative paths and the hashes
    ex = open_store(tmp_path / "x")
    for s in ex.sessions:  # the export points at the moved sessions, relative to itself
        assert (ex.root / s["path_in_store"]).resolve() == (moved / s["session_id"]).resolve()
    # swap two session folders: each name now holds another recording, so neither consent is trusted
    a, b = [moved / sid for sid in rec["session_ids"][:1]] + [p for p in find_sessions(moved) if p.name not in rec["session_ids"][:1]][:1]
    a.rename(moved / "swap")
    b.rename(a)
    (moved / "swap").rename(b)
    rec2 = export(moved, "research", tmp_path / "y", spec_path=lenient)
    assert a.name not in rec2["session_ids"] and b.name not in rec2["session_ids"]
    why = {x["session_id"]: " ".join(x["reasons"]) for x in rec2["excluded"]}
    assert "cannot be read" in why[a.name]


_EDITS = st.sampled_from(["keep", "research_only", "commercial_only", "delete", "expired", "revoked"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(move=st.sampled_from(["none", "rename", "deeper", "store_only", "sessions_away"]),
       cwd=st.sampled_from(["root", "parent", "inside"]), relative=st.booleans(),
       edits=st.lists(_EDITS, min_size=4, max_size=4), use=st.sampled_from(["research", "commercial"]))
def test_property_export_never_holds_a_session_its_live_consent_does_not_clear(
        built: Path, lenient: Path, move: str, cwd: str, relative: bool, edits: list[str], use: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="rights-"))
    old = os.getcwd()
    try:
        d = copy_data(built, work / "p" / "data")
        for folder, how in zip(find_sessions(d), edits):
            if how != "keep":
                _edit(folder, how)
        store, sessions_at = d / "episodes", d
        if move == "rename":
            d = d.rename(work / "p" / "renamed")
            store, sessions_at = d / "episodes", d
        elif move == "deeper":
            (work / "q" / "r").mkdir(parents=True)
            d = d.rename(work / "q" / "r" / "data")
            store, sessions_at = d / "episodes", d
        elif move == "store_only":
            store = (d / "episodes").rename(work / "store")
        elif move == "sessions_away":
            sessions_at = work / "away"
            sessions_at.mkdir()
            for p in find_sessions(d):
                p.rename(sessions_at / p.name)
        os.chdir({"root": "/", "parent": str(store.parent), "inside": str(store)}[cwd])
        arg = Path(os.path.relpath(store)) if relative else store
        rec = export(arg, use, work / "out", spec_path=lenient)
        for sid in rec["session_ids"]:
            live = sessions_at / sid / "consent.json"
            assert live.exists(), (sid, move)
            ok, why = consent_status(json.loads(live.read_text()), use)
            assert ok, (sid, why, move, edits)
        if move == "sessions_away":
            assert rec["episodes"] == 0
    finally:
        os.chdir(old)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- 2. the trail survives a rebuild


def test_rebuild_keeps_exports_revocations_and_the_revocation_itself(built: Path, tmp_path: Path, lenient: Path) -> None:
    d = copy_data(built, tmp_path / "data")
    rec = export(d, "research", tmp_path / "exp", spec_path=lenient)
    subject = rec["subjects"][0]
    first = revoke(subject, d, by="t", date="2027-01-02")
    mine = first["sessions"]
    # someone restores the consent files from a backup taken before the revocation, then rebuilds
    for sid in mine:
        c = json.loads((d / sid / "consent.json").read_text())
        c.pop("revocations", None)
        c["revoked_at"] = None
        (d / sid / "consent.json").write_text(json.dumps(c))
    build_store(d, workers=1)
    root = open_store(d).root
    assert json.loads((root / L.EXPORTS_PATH).read_text())["exports"][0]["out"] == str((tmp_path / "exp").resolve())
    assert json.loads((root / L.REVOCATIONS_PATH).read_text())["revocations"][0]["subject_id"] == subject
    rows = [r for r in open_store(d).episode_rows() if r["subject_id"] == subject]
    assert rows and all(r["consent_revoked_at"] == "2027-01-02" for r in rows)
    rec2 = export(d, "research", tmp_path / "exp2", spec_path=lenient)
    assert not set(rec2["session_ids"]) & set(mine)
    other = next((s for s in rec["subjects"] if s != subject), None)
    if other:  # a later revocation still names the export made before the rebuild
        assert any(e["export"] == str((tmp_path / "exp").resolve()) for e in revoke(other, d)["exports_using"])


# ---------------------------------------------------------------- 3 + 4. models: registered, and never trained on revoked people

MICRO = ["--set", "image_size=32", "--set", "deter=32", "--set", "hidden=32", "--set", "cnn_depth=4", "--set", "stoch=4",
         "--set", "classes=4", "--set", "reward_bins=11", "--seq-len", "4", "--batch-size", "2", "--set", "overshoot=0",
         "--set", "threads=1", "--steps", "1", "--no-progress"]


def _train(store: Path, out: Path) -> tuple[int, str]:
    from egoworld.train.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["train", str(store), "--out", str(out), *MICRO])
    return r.exit_code, r.output


def test_revocation_finds_registered_runs_and_training_leaves_revoked_people_out(built: Path, tmp_path: Path) -> None:
    d = copy_data(built, tmp_path / "data")
    code, out = _train(d / "episodes", tmp_path / "runs" / "a")
    assert code == 0, out
    runs = json.loads((d / "episodes" / L.RUNS_PATH).read_text())["runs"]
    assert runs[0]["run"] == str((tmp_path / "runs" / "a").resolve()) and runs[0]["session_ids"]
    trained = runs[0]["session_ids"]
    subject = next(s["consent"]["subject_id"] for s in open_store(d).sessions if s["session_id"] in trained)
    rec = revoke(subject, d, by="t")  # no --checkpoints: the store's registry names the run
    assert any(c["checkpoint"] == runs[0]["run"] for c in rec["checkpoints_using"]), rec["checkpoints_using"]
    audit = run_audit(d)
    used = {u["subject_id"]: u for u in audit["revoked_used_by"]}
    assert used[subject]["checkpoints"]
    shutil.rmtree(tmp_path / "runs" / "a")  # a deleted run is still named, from the registry
    assert run_audit(d)["revoked_used_by"][0]["checkpoints"][0]["on_disk"] is False
    # 4: a new run leaves the revoked person's episodes out and says so
    code, out = _train(d / "episodes", tmp_path / "runs" / "b")
    assert code == 0, out
    lin = json.loads((tmp_path / "runs" / "b" / "lineage.json").read_text())
    mine = set(rec["sessions"])
    assert not mine & {e["session_id"] for e in lin["episodes"]}
    assert "left out" in out and set(lin.get("left_out", {})) <= mine


# ---------------------------------------------------------------- 5. lineage shapes


def test_a_lineage_that_is_a_list_is_read_not_a_crash(built: Path, tmp_path: Path) -> None:
    d = copy_data(built, tmp_path / "data")
    s = open_store(d).sessions[0]
    ck = tmp_path / "ckpt"
    (ck / "list").mkdir(parents=True)
    (ck / "list" / "lineage.json").write_text(json.dumps([s["session_id"]]))
    (ck / "odd").mkdir()
    (ck / "odd" / "lineage.json").write_text("42")
    rec = revoke(s["consent"]["subject_id"], d, checkpoints=[ck])
    by = {Path(c["checkpoint"]).name: c for c in rec["checkpoints_using"]}
    assert by["list"]["sessions"] == [s["session_id"]]
    assert "not an object or a list" in by["odd"]["error"]
    assert json.loads((open_store(d).root / L.REVOCATIONS_PATH).read_text())["revocations"]  # it finished
    # the audit, not told where those checkpoints are, still names the one the revocation found
    used = {u["subject_id"]: u for u in run_audit(d)["revoked_used_by"]}[s["consent"]["subject_id"]]
    assert str(ck / "list") in {c["checkpoint"] for c in used["checkpoints"]}


# ---------------------------------------------------------------- 6. consent files are checked before they are trusted


@pytest.mark.parametrize("change,words", [
    ({"expires_at": "31/12/2031"}, "expires_at must be an ISO date"),
    ({"revoked_at": 20240101}, "revoked_at must be an ISO date"),
    ({"scopes": "commercial"}, "scopes must be a list of strings"),
])
def test_bad_consent_is_a_clear_error_naming_the_file(built: Path, tmp_path: Path, lenient: Path, change: dict, words: str) -> None:
    d = copy_data(built, tmp_path / "data")
    folder = find_sessions(d)[0]
    c = json.loads((folder / "consent.json").read_text())
    c.update(change)
    (folder / "consent.json").write_text(json.dumps(c))
    with pytest.raises(SessionError, match=words) as e:
        open_session(folder)
    assert e.value.path == folder / "consent.json"
    for args in (["audit", str(d), "--spec", str(lenient), "--out", str(tmp_path / "a")],
                 ["export", str(d), "--use", "commercial", "--out", str(tmp_path / "x"), "--spec", str(lenient)]):
        r = CliRunner().invoke(_cli(), args)
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "consent.json" in text and words in text, r.output
    assert not (tmp_path / "x").exists()
    from egoworld.cli import app

    r = CliRunner().invoke(app, ["inspect", str(folder)])
    assert r.exit_code == 2 and words in " ".join(r.output.split())
    with pytest.raises(DatasetError, match=words):
        export(d, "research", tmp_path / "y", spec_path=lenient)


def test_a_bad_consent_leaves_the_session_out_of_the_store_with_the_reason(built: Path, tmp_path: Path) -> None:
    d = copy_data(built, tmp_path / "data")
    folder = find_sessions(d)[0]
    (folder / "consent.json").write_text(json.dumps({"subject_id": "p", "scopes": "research", "expires_at": None,
                                                     "revoked_at": None}))
    r = build_store(d, workers=1)
    left = {s["session_id"]: s["excluded"] for s in r.excluded}
    assert "consent.json" in left[folder.name] and r.episodes == len(find_sessions(d)) - 1
