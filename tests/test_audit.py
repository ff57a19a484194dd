"""Audit: capture standard, sync, coverage, rights, the HTML report, consent revocation."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dataset_fixture import copy_data, synced_store_data
from typer.testing import CliRunner

from egoworld.audit.audit import run_audit
from egoworld.audit.rights import LiveConsent, clearance, revoke
from egoworld.audit.spec import SpecError, evaluate_capture, evaluate_sync, load_spec
from egoworld.dataset.build import DatasetError
from egoworld.dataset.store import open_store


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_data(synced_store_data(tmp_path_factory), tmp_path_factory.mktemp("audit") / "data")


def _session(**over) -> dict:
    s = {"session_id": "x", "path": "/nonexistent", "episode_index": 0,
         "rig": {"fps": 30.0, "width": 128, "height": 128, "camera_model": "pinhole", "fov_deg": {"h": 90, "v": 90}},
         "capture": {"measured_fps": 30.0, "brightness_mean": 90.0, "sharpness_lapvar": 300.0, "dropped_rate": 0.0},
         "sync": {"verdict": "ok", "reason": "", "max_abs_drift_ppm": 300.0, "max_residual_ms": 1.0, "clocks": {}},
         "consent": {"subject_id": "p", "scopes": ["research", "commercial"], "expires_at": "2031-01-01", "revoked_at": None}}
    for k, v in over.items():
        s[k] = {**s[k], **v} if isinstance(v, dict) and isinstance(s.get(k), dict) else v
    return s


def test_capture_standard_flags_each_break_with_its_reason() -> None:
    spec = load_spec()
    assert evaluate_capture(spec, _session())["verdict"] == "pass"
    cases = {
        "wrong frame rate": _session(rig={"fps": 24.0}, capture={"measured_fps": 24.0}),
        "too dark": _session(capture={"brightness_mean": 12.0}),
        "blurred": _session(capture={"sharpness_lapvar": 2.0}),
        "resolution": _session(rig={"width": 64, "height": 64}),
        "FOV": _session(rig={"fov_deg": {"h": 170, "v": 150}}),
        "camera model": _session(rig={"camera_model": "equirect"}),
        "dropped frames": _session(capture={"dropped_rate": 0.2}),
    }
    for why, s in cases.items():
        v = evaluate_capture(spec, s)
        assert v["verdict"] == "fail" and any(why in r for r in v["reasons"]), (why, v)
    y = evaluate_sync(spec, _session(sync={"max_abs_drift_ppm": 20000.0}))
    assert y["verdict"] == "fail" and "heavy clock drift" in y["reasons"][0]
    # 'suspect' passes only while its timing uncertainty is within the spec; 'failed' never does
    assert evaluate_sync(spec, _session(sync={"verdict": "suspect", "reason": "r", "max_sigma_ms": 1.5}))["verdict"] == "ok"
    y = evaluate_sync(spec, _session(sync={"verdict": "suspect", "reason": "r", "max_sigma_ms": 6.0}))
    assert y["verdict"] == "fail" and "timing uncertainty 6.00 ms" in y["reasons"][0]
    assert evaluate_sync(spec, _session(sync={"verdict": "failed", "reason": "r"}))["verdict"] == "fail"


@pytest.mark.parametrize("text,match", [
    ("fps: [1, 2", "not valid YAML"),
    ("- just\n- a list\n", "must hold a mapping"),
    ("fps: {nominal: 30}\n", "missing key 'fps.tolerance'"),
])
def test_malformed_spec_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    with pytest.raises(SpecError, match=match) as e:
        load_spec(p)
    assert e.value.path == p


def test_spec_type_errors_name_the_key(tmp_path: Path) -> None:
    spec = Path(load_spec()["_path"]).read_text().replace("min: 40", "min: dark")
    p = tmp_path / "s.yaml"
    p.write_text(spec)
    with pytest.raises(SpecError, match="brightness.min"):
        load_spec(p)
    q = tmp_path / "s.json"
    q.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(q)


def test_malformed_spec_writes_nothing(data: Path, tmp_path: Path) -> None:
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    bad = tmp_path / "bad.yaml"
    bad.write_text("fps: [")
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["audit", str(data), "--spec", str(bad), "--out", str(out)])
    assert r.exit_code == 2 and "bad.yaml" in "".join(r.output.split())
    assert not out.exists() or not any(out.iterdir())
    r = CliRunner().invoke(app, ["export", str(data), "--use", "research", "--out", str(tmp_path / "x"), "--spec", str(bad)])
    assert r.exit_code == 2 and not (tmp_path / "x").exists()


def test_audit_report_sections(data: Path, tmp_path: Path, lenient: Path) -> None:
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["audit", str(data), "--spec", str(lenient), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "audit.json").read_text())
    store = open_store(data)
    assert a["summary"]["sessions"] == len(store.sessions)
    cov = a["coverage"]
    assert set(cov["by"]) == {"place", "person", "task", "objects"}
    assert cov["frames"] == store.info["total_frames"]
    cells = cov["place_x_task"]
    n_cells = len(cells["rows"]) * len(cells["cols"])
    assert len(cells["empty"]) == sum(v == 0 for row in cells["frames"] for v in row) and n_cells > len(cells["empty"])
    assert set(cov["motion"]) <= {"push", "open_drawer", "pick_place", "stack"} and cov["motion"]
    assert {"usable_research", "usable_commercial"} <= set(a["rights"][0])
    html = (tmp_path / "report.html").read_text()
    for section in ("Capture standard", "Sync", "Coverage", "Rights", "Sample frames"):
        assert f"<h2>{section}" in html
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", html), "the report must be self-contained"
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) >= 4 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)


def test_missing_consent_is_never_cleared(data: Path, lenient: Path) -> None:
    spec = load_spec(lenient)
    store = open_store(data)
    s = dict(store.sessions[0])
    tmp = Path(s["path"]) / "consent.json"
    saved = tmp.read_text() if tmp.exists() else None
    try:
        tmp.unlink(missing_ok=True)
        ok, reasons = clearance(s, "research", spec)
        assert not ok and any("no consent record" in r and "consent.json" in r for r in reasons)
    finally:
        if saved is not None:
            tmp.write_text(saved)


def test_malformed_consent_is_a_clear_error(data: Path, lenient: Path) -> None:
    store = open_store(data)
    s = dict(store.sessions[0])
    p = Path(s["path"]) / "consent.json"
    saved = p.read_text() if p.exists() else None
    try:
        p.write_text("{oops")
        with pytest.raises(DatasetError, match="consent.json"):
            clearance(s, "research", load_spec(lenient))
    finally:
        p.unlink()
        if saved is not None:
            p.write_text(saved)


# ---------------------------------------------------------------- verdicts: judged on reading, never frozen in the store


def _query(data: Path, sql: str, *extra: str) -> list[dict]:
    from egoworld.audit.cli import register

    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["query", str(data), sql, "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_the_store_keeps_measurements_and_the_audit_judges_them_when_read(data: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    store = open_store(data)
    written = pq.read_schema(next((store.root / "meta" / "episodes").glob("*/*.parquet"))).names
    assert {"brightness_mean", "measured_fps", "fov_h_deg"} <= set(written)  # the measurements
    assert not {"capture_verdict", "capture_reasons"} & set(written)  # and no verdict on them
    spec = load_spec()
    rows = _query(data, "SELECT session_id, capture_verdict, capture_reasons, sync_spec_verdict FROM sessions")
    assert len(rows) == len(store.sessions)
    for s, r in zip(store.sessions, rows):
        assert r["session_id"] == s["session_id"]
        assert r["capture_verdict"] == evaluate_capture(spec, s)["verdict"]
        assert r["sync_spec_verdict"] == evaluate_sync(spec, s)["verdict"]
    eps = _query(data, "SELECT episode_index, session_id, capture_verdict FROM episodes")
    assert [e["episode_index"] for e in eps] == list(range(len(eps))) and eps
    by_session = {r["session_id"]: r["capture_verdict"] for r in rows}
    assert all(e["capture_verdict"] == by_session[e["session_id"]] for e in eps)
    # a stricter standard changes every verdict at once: no rebuild, the store's files untouched
    before = {p: p.stat().st_mtime_ns for p in store.root.rglob("*") if p.is_file()}
    strict = tmp_path / "strict.yaml"
    strict.write_text(Path(spec["_path"]).read_text().replace("min_width: 96", "min_width: 4096"))
    rows = _query(data, "SELECT capture_verdict, capture_reasons FROM sessions", "--spec", str(strict))
    assert rows and all(r["capture_verdict"] == "fail" and "below the minimum 4096" in r["capture_reasons"] for r in rows)
    assert {p: p.stat().st_mtime_ns for p in store.root.rglob("*") if p.is_file()} == before


def test_a_store_with_a_frozen_verdict_is_read_without_it(data: Path, tmp_path: Path) -> None:
    """A store built when the build froze the default spec's verdict into meta/episodes: the stale
    copy is dropped on opening, and the verdict comes from the spec the audit is given."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    st_ = tmp_path / "old"
    shutil.copytree(open_store(data).root, st_)
    p = next((st_ / "meta" / "episodes").glob("*/*.parquet"))
    t = pq.read_table(p)
    t = t.append_column("capture_verdict", pa.array(["pass"] * t.num_rows)).append_column(
        "capture_reasons", pa.array([""] * t.num_rows))
    pq.write_table(t, p)
    assert "capture_verdict" not in open_store(st_).episodes.column_names
    strict = tmp_path / "strict.yaml"
    strict.write_text(Path(load_spec()["_path"]).read_text().replace("min_height: 96", "min_height: 4096"))
    eps = _query(st_, "SELECT capture_verdict FROM episodes", "--spec", str(strict))
    assert eps and all(e["capture_verdict"] == "fail" for e in eps)


def test_a_runs_lineage_records_the_verdict_as_of_training(data: Path) -> None:
    from types import SimpleNamespace

    from egoworld.train.lineage import episode_records

    store = open_store(data)
    recs = episode_records(SimpleNamespace(episodes=store.episodes, store=store))
    spec = load_spec()
    want = {s["session_id"]: evaluate_capture(spec, s)["verdict"] for s in store.sessions}
    assert recs and all(r["spec_verdicts"]["capture_verdict"] == want[r["session_id"]] for r in recs)
    assert all(r["capture_verdict"] == want[r["session_id"]] and r["spec_verdicts"]["sync_verdict"] for r in recs)


# ---------------------------------------------------------------- property: nothing non-cleared is exported

_dates = st.one_of(st.none(), st.dates(dt.date(2020, 1, 1), dt.date(2035, 1, 1)).map(dt.date.isoformat))
_consent = st.one_of(st.none(), st.fixed_dictionaries({
    "subject_id": st.sampled_from(["a", "b"]), "scopes": st.lists(st.sampled_from(["research", "commercial"]), unique=True),
    "expires_at": _dates, "revoked_at": _dates}))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(consent=_consent, use=st.sampled_from(["research", "commercial"]), verdict=st.sampled_from(["ok", "suspect", "failed"]),
       bright=st.floats(0, 255), drift=st.floats(0, 30000), sigma=st.floats(0, 10), in_store=st.booleans())
def test_property_clearance_requires_every_condition(consent, use, verdict, bright, drift, sigma, in_store) -> None:
    spec = load_spec()
    today = dt.date(2027, 6, 1)
    s = _session(consent=consent, sync={"verdict": verdict, "max_abs_drift_ppm": drift, "max_sigma_ms": sigma},
                 capture={"brightness_mean": bright},
                 episode_index=0 if in_store else None, excluded=None if in_store else "x")
    live = LiveConsent(consent, Path("consent.json") if consent else None, None if consent else "no consent record")
    ok, reasons = clearance(s, use, spec, today, live=live)
    must = (consent is not None and use in consent["scopes"] and not consent["revoked_at"]
            and (consent["expires_at"] is None or dt.date.fromisoformat(consent["expires_at"]) >= today)
            and verdict in spec["sync"]["accept_verdicts"] and verdict != "failed"
            and sigma <= spec["sync"]["max_timing_uncertainty_ms"] and drift <= spec["sync"]["max_abs_drift_ppm"]
            and spec["brightness"]["min"] <= bright <= spec["brightness"]["max"] and in_store)
    assert ok == must and (ok == (not reasons))


def test_revoke_reaches_every_copy_and_names_the_export(data: Path, tmp_path: Path, lenient: Path) -> None:
    from egoworld.audit.cli import register
    from egoworld.audit.export import export

    d = copy_data(data, tmp_path / "data")
    rec = export(d, "research", tmp_path / "exp", spec_path=lenient)
    assert rec["episodes"] >= 1
    subject = next(s for s in rec["subjects"])
    ckpt = tmp_path / "ckpt" / "run1"
    ckpt.mkdir(parents=True)
    (ckpt / "lineage.json").write_text(json.dumps({"episodes": [{"session_id": sid} for sid in rec["session_ids"]]}))
    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["consent", "revoke", subject, str(d), "--by", "tester", "--date", "2027-01-02",
                                 "--checkpoints", str(tmp_path / "ckpt")])
    assert r.exit_code == 0, r.output
    assert "export used it" in r.output and "checkpoint used it" in r.output
    sids = [s["session_id"] for s in open_store(d).sessions if (s.get("consent") or {}).get("subject_id") == subject]
    for sid in sids:
        c = json.loads((d / sid / "consent.json").read_text())
        assert c["revoked_at"] == "2027-01-02" and c["revocations"][-1]["by"] == "tester"
    rows = open_store(d).episode_rows()
    assert all(r["consent_revoked_at"] == "2027-01-02" for r in rows if r["subject_id"] == subject)
    exp_rows = open_store(tmp_path / "exp").episode_rows()
    assert all(r["consent_revoked_at"] == "2027-01-02" for r in exp_rows if r["subject_id"] == subject)
    rec2 = export(d, "research", tmp_path / "exp2", spec_path=lenient)
    assert not set(rec2["session_ids"]) & set(sids)
    assert all(any("revoked" in why for why in x["reasons"]) for x in rec2["excluded"] if x["session_id"] in sids)
    a = run_audit(d, lenient, checkpoints=[tmp_path / "ckpt"])
    used = {u["subject_id"]: u for u in a["revoked_used_by"]}
    assert used[subject]["exports"] and used[subject]["checkpoints"]
    with pytest.raises(DatasetError, match="no session with consent subject"):
        revoke("nobody", d)
