"""`egoworld demo --quick` runs the whole built pipeline for real, says what it measured, and writes one report."""
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from egoworld.cli import app


def _ok(demo: dict) -> Path:
    assert demo["exit_code"] == 0, f"{demo['output']}\n{demo['exception']!r}"
    return demo["out"]


def test_demo_quick_end_to_end(demo_quick):
    out = _ok(demo_quick)
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
    output = demo_quick["output"]
    assert "egoworld demo" in output and "PSNR" in output and str(out / "report.html") in "".join(output.split())
    print(f"egoworld demo --quick: {demo_quick['seconds']:.1f} s ({s['timings_s']})")


def test_demo_report_is_one_self_contained_page(demo_quick):
    out = _ok(demo_quick)
    html = (out / "report.html").read_text()
    for anchor in ("summary", "data", "sync", "model", "planning"):
        assert f"id='{anchor}'" in html, anchor
    assert "95 % interval over episodes:" in html  # each beats line says which wins the clips can show
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", html), "every src/href must be inline data or an anchor"
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 6  # frames, heatmaps, sync, loss, horizon plots
    assert len(re.findall(r'<video src="data:video/mp4;base64,', html)) >= 3  # two eval clips + the counterfactual
    assert "not run" not in html  # the demo plans in the simulator with its model
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["sync"]["clocks"] and all(r["true_offset_ms"] is not None for r in numbers["sync"]["clocks"])
    rate = next(iter(numbers["sync"]["rate_rms"].values()))
    assert rate["after"] < rate["before"]  # the fitted clock lines the gyro up with the video
    for split in numbers["model"]["splits"].values():
        assert split["n_clips"] > 0 and split["episodes"] and "psnr" in split
    assert numbers["model"].get("counterfactual_clip") and numbers["model"].get("counterfactual")
    assert numbers["data"]["sessions"] == 4 and numbers["planning"]["run"]
    methods = {r["method"] for r in numbers["planning"]["table"]}
    assert {"random controls", "planner in the world model"} <= methods
    assert all(0.0 <= r["success"] <= 1.0 and r["episodes"] >= 1 for r in numbers["planning"]["table"])
    agreement = numbers["planning"]["cost_agreement"]  # measured before the episodes: can the model rank plans?
    from egoworld.demo import PLAN_TASK

    assert [(a["task"], a["split"]) for a in agreement] == [(PLAN_TASK, "held-in")]
    assert -1.0 <= agreement[0]["spearman"] <= 1.0 and len(agreement[0]["per_start"]) >= 1


@pytest.mark.slow
def test_demo_same_seed_same_numbers(demo_quick, tmp_path):
    """A second quick run with the same seed: every number in report.json (and eval.json) is the same."""
    first = _ok(demo_quick)
    r = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path / "again")])
    assert r.exit_code == 0, r.output
    a, b = (json.loads((d / "report.json").read_text()) for d in (first, tmp_path / "again"))
    assert a == b
    ea, eb = (json.loads((d / "eval" / "eval.json").read_text()) for d in (first, tmp_path / "again"))
    assert ea["splits"] == eb["splits"] and ea.get("counterfactual") == eb.get("counterfactual")


def test_planning_section_from_a_dict(tmp_path):
    from egoworld.report.planning import planning_section

    html, nums = planning_section(None)
    assert "not run" in html and nums == {"run": False}
    rows = [{"task": "push", "method": "CEM in the model", "split": "heldout", "success": 0.5, "progress": 0.75, "episodes": 4},
            {"task": "push", "method": "CEM in the simulator", "split": "heldout", "success": 0.75, "progress": 0.9, "episodes": 4}]
    html, nums = planning_section({"table": rows, "video": None, "measured_on": "4 held-out push starts"})
    assert "CEM in the model" in html and "50%" in html and "4 held-out push starts" in html and "not run" not in html
    assert nums["run"] and nums["table"][1]["success"] == 0.75


def test_planning_section_from_closed_loop_results():
    """The closed-loop evaluation's results.json shape becomes the section's rows (and "all" rows)."""
    from egoworld.report.planning import from_closed_loop, planning_section

    cell = {"n": 2, "success": 0.5, "progress": 0.6, "progress_gain": 0.2}
    res = {"config": {"episodes": 2, "splits": ["held_in"], "max_steps": 60}, "videos": [],
           "table": {"push": {"held_in": {"model": cell, "oracle": dict(cell, success=1.0)}}},
           "overall": {"held_in": {"model": cell}}, "model_over_oracle": {"held_in": {"success": 0.5, "progress_gain": 0.4}}}
    d = from_closed_loop(res)
    assert [(r["task"], r["success"]) for r in d["table"]] == [("push", 0.5), ("push", 1.0), ("all", 0.5)]
    html, nums = planning_section(d)
    assert "+0.20" in html and "60 frames each" in html and nums["table"][0]["progress_gain"] == 0.2
    assert "cost agreement" not in html  # none measured: no table
    res["cost_agreement"] = {"push": {"held_in": {"spearman": 0.61, "per_start": [0.5, 0.72], "candidates": 16}}}
    html, nums = planning_section(from_closed_loop(res))
    assert "cost agreement" in html and "+0.61" in html and "+0.72" in html
    assert nums["cost_agreement"][0]["spearman"] == 0.61
