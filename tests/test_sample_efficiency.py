"""bench/sample_efficiency.py: PPO's curve on a tiny budget, the improve.json reader and the verdict."""
from __future__ import annotations

import json

import pytest

from bench import sample_efficiency as se

TINY = ["--task", "push", "--size", "36", "--max-steps", "30", "--eval-episodes", "1", "--ppo-n-steps", "32",
        "--ppo-batch-size", "16", "--ppo-n-epochs", "2", "--ppo-frames", "192", "--eval-every", "96"]


def _improve_json(path, rounds=((40_000, 0, 0.0), (41_080, 1_080, 0.5), (42_160, 2_160, 0.67))):
    path.write_text(json.dumps({"config": {"task": "push", "eval_episodes": 6}, "run": "runs/absent", "data": "data",
                                "rounds": [{"round": i, "real_frames": f, "interaction_frames": n, "success": s,
                                            "progress_gain": 0.1 * i, "episodes": 6}
                                           for i, (f, n, s) in enumerate(rounds)]}))
    return path


def test_ppo_curve_outputs_and_determinism(tmp_path):
    pytest.importorskip("stable_baselines3")
    a = se.main(TINY + ["--out", str(tmp_path / "a")])
    curve = a["ppo"]["curve"]
    # evaluated before training, then after the first update past each 96 frames (32 decisions × 3 frames)
    assert [c["frames"] for c in curve] == [0, 96, 192]
    assert [c["updates"] for c in curve] == [0, 1, 2]
    assert a["ppo"]["train_frames"] == 192
    assert all(c["episodes"] == 1 and 0 < c["eval_frames"] <= 30 for c in curve)
    assert a["ppo"]["eval_frames"] == sum(c["eval_frames"] for c in curve)  # reported apart from training frames
    assert a["world_model"] is None and a["verdict"]["ppo"]["frames_spent"] == 192
    saved = json.loads((tmp_path / "a" / "sample_efficiency.json").read_text())
    assert saved["ppo"]["curve"] == curve and saved["config"]["starts"][0]["task"] == "push"
    assert (tmp_path / "a" / "sample_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "a" / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page and "PPO" in page
    # same seed → same numbers
    b = se.main(TINY + ["--out", str(tmp_path / "b")])
    def strip(cs):
        return [{k: v for k, v in c.items() if k != "seconds"} for c in cs]

    assert strip(b["ppo"]["curve"]) == strip(curve)


def test_nature_cnn_needs_36_pixels(tmp_path):
    pytest.importorskip("stable_baselines3")
    with pytest.raises(ValueError, match="at least 36"):
        se.main(TINY[:2] + ["--size", "32", "--ppo-frames", "96", "--out", str(tmp_path)])


def test_improve_json_reader_and_verdict(tmp_path):
    p = _improve_json(tmp_path / "improve.json")
    res = se.main(["--improve-json", str(p), "--ppo-frames", "0", "--out", str(tmp_path / "out")])
    wm = res["world_model"]
    assert [c["frames"] for c in wm["curve"]] == [40_000, 41_080, 42_160]
    assert wm["capture_frames"] == 40_000 and wm["curve"][2]["interaction_frames"] == 2_160
    assert res["verdict"]["world_model"]["frames_to_threshold"] == 41_080
    assert (tmp_path / "out" / "sample_efficiency.png").exists() and (tmp_path / "out" / "report.html").exists()

    ppo = {"curve": [{"frames": 0, "success": 0.0}, {"frames": 300_000, "success": 0.2}]}
    v = se.verdict(ppo, wm, 0.5)
    assert v["ppo"]["frames_to_threshold"] is None and v["ratio_at_least"] == pytest.approx(300_000 / 41_080, abs=1e-3)
    assert any("not reached within 300000" in line for line in v["lines"])
    ppo["curve"].append({"frames": 820_000, "success": 0.5})
    assert se.verdict(ppo, wm, 0.5)["ratio"] == pytest.approx(820_000 / 41_080, abs=1e-3)


def test_improve_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "improve.json"
    bad.write_text(json.dumps({"rounds": [{"round": 0, "success": 0.0}]}))
    with pytest.raises(ValueError, match="improve.json: round 0 lacks real_frames"):
        se.read_improve(bad)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        se.read_improve(tmp_path / "absent.json")
    other = _improve_json(tmp_path / "other.json")
    with pytest.raises(SystemExit, match="measured task 'push'"):
        se.main(["--improve-json", str(other), "--task", "stack", "--ppo-frames", "0", "--out", str(tmp_path / "o")])
