"""`egoworld demo --quick` runs the whole built pipeline for real, and says what it measured."""
import json

from typer.testing import CliRunner

from egoworld.cli import app


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert len(s["sessions"]) == 4
    assert s["sync"]["frames"] > 0 and s["sync"]["median_abs_ms"] < 10.0  # measured against truth/clocks.json
    assert s["train"]["model"]["steps"] == s["plan"]["train_steps"]
    assert s["train"]["action_blind"]["steps"] == s["plan"]["train_steps"]
    assert "val" in s["eval"]["splits"] or "heldout" in s["eval"]["splits"]
    for report in s["reports"].values():
        html = open(report).read()
        assert html[:15].lower().startswith("<!doctype html")
    assert (out / "episodes" / "meta" / "info.json").exists()
    assert "egoworld demo" in r.output and "PSNR" in r.output
