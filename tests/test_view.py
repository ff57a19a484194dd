"""`egoworld view` writes an .rrd that rerun reads back, with the entities a session, an episode and a rollout need."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from egoworld.cli import app
from egoworld.view import _to_video_clock, kind_of, view


def read_rrd(path: Path) -> dict[str, int]:
    """Entity path → rows logged, read back from the file with rerun's own reader."""
    from rerun.chunk import RrdReader

    rows: dict[str, int] = {}
    for c in RrdReader(path).stream().to_chunks():
        rows[str(c.entity_path)] = rows.get(str(c.entity_path), 0) + c.num_rows
    return rows


def test_session_to_rrd(sim_data: Path, tmp_path: Path) -> None:
    session = sorted(p for p in sim_data.iterdir() if (p / "session.json").exists())[0]
    info, saved = view(session, save=tmp_path / "s.rrd")
    assert saved == tmp_path / "s.rrd" and saved.stat().st_size > 10_000
    rows = read_rrd(saved)
    for entity in ("/world/head/camera/image", "/world/head", "/world/head_trajectory", "/world/hands/right/keypoints",
                   "/world/hands/right/bones", "/imu/gyro", "/notes"):
        assert entity in rows, (entity, sorted(rows))
    assert rows["/world/head/camera/image"] == info["frames"] > 0
    assert info["on_video_clock"] == {"head_pose": False, "hands": False, "imu": False}  # no sync.json beside it


def test_cli_saves_without_a_display(sim_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = sorted(p for p in sim_data.iterdir() if (p / "session.json").exists())[0]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["view", str(session)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / f"{session.name}.rrd").stat().st_size > 0 and "rerun" in r.output
    r = CliRunner().invoke(app, ["view", str(tmp_path)])
    assert r.exit_code == 2 and "is not a session" in " ".join(r.output.split())


def test_a_failed_save_leaves_no_rrd(sim_data: Path, tmp_path: Path) -> None:
    session = tmp_path / "s"
    import shutil

    shutil.copytree(sorted(p for p in sim_data.iterdir() if (p / "session.json").exists())[0], session)
    (session / "motion" / "hands.parquet").write_bytes(b"not parquet")
    r = CliRunner().invoke(app, ["view", str(session), "--save", str(tmp_path / "out" / "s.rrd")])
    assert r.exit_code == 2 and "hands.parquet" in "".join(r.output.split()), r.output
    assert not list((tmp_path / "out").iterdir())


def test_motion_goes_onto_the_video_clock() -> None:
    sync = {"clocks": {"imu": {"verdict": "ok", "segments": [
        {"start_s": None, "offset_ms": 250.0, "drift_ppm": 400.0},
        {"start_s": 5.0, "offset_ms": 262.0, "drift_ppm": 400.0}]}}}
    t_video = np.linspace(0.0, 9.0, 50)
    seg = np.where(t_video >= 5.0, 1, 0)
    s = (1 + 400e-6) * t_video + np.where(seg == 1, 0.262, 0.250)
    back, mapped = _to_video_clock(sync, "imu", s)
    assert mapped and np.allclose(back, t_video, atol=1e-9)
    raw, mapped = _to_video_clock(None, "imu", s)
    assert not mapped and np.array_equal(raw, s)


def test_episode_and_rollout_to_rrd(demo_quick: dict, tmp_path: Path) -> None:
    assert demo_quick["exit_code"] == 0, demo_quick["output"]
    out = demo_quick["out"]
    assert kind_of(out) == "store" and kind_of(out / "runs" / "model") == "run"
    info, saved = view(out, save=tmp_path / "e.rrd", episode=1)
    rows = read_rrd(saved)
    assert info["episode"] == 1 and rows["/world/head/camera/image"] == info["frames"] > 0
    assert {"/world/head", "/world/hands/left/keypoints", "/action/head"} <= set(rows)
    info, saved = view(out / "runs" / "model", save=tmp_path / "r.rrd")
    rows = read_rrd(saved)
    for name in ("real", "model", "copy_last"):
        assert rows[f"/rollout/{name}"] == info["frames"]
    assert "/rollout/psnr_model" in rows
