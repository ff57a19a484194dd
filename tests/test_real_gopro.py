"""The three real GoPro clips (../shared/real/gopro, gpmf-parser's samples), imported and synced as a user runs them.

HERO5 on a Karma gimbal, stabilisation off: the picture follows the gyro, so sync must find the
offset (``ok``, or ``suspect`` with the reason). HERO7 and MAX with HyperSmooth: the picture is
warped against the gyro, so sync must never give a confident offset, and must say why. Skipped
when the clips are not in this checkout (see tests/real_data.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from real_data import real_file
from typer.testing import CliRunner

from egoworld.capture.importers.camera import GOPRO_AXES, R_CAMERA_NORMALIZED
from egoworld.session import open_session
from egoworld.sync.axes import rank_axes
from egoworld.sync.evaluate import known_shifts
from egoworld.sync.visual import visual_rotations

CLIPS = ("karma", "hero7", "max-heromode")
QUARTER_FRAME_MS = 1000 / 29.97 / 4


def _cli(args: list[str], code: int = 0) -> str:
    from egoworld.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r.output


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA with the three clips: ``egoworld import camera CLIP --out DATA/NAME --consent research``, then ``egoworld sync DATA``."""
    root = tmp_path_factory.mktemp("real_gopro") / "D"
    for name in CLIPS:
        _cli(["import", "camera", real_file(f"gopro/{name}.mp4"), "--out", root / name, "--consent", "research"])
    _cli(["sync", root], code=1)  # exit 1: the two HyperSmooth clips fail, as they must
    return root


def _sync(data: Path, name: str) -> dict:
    return json.loads((data / "aligned" / name / "sync.json").read_text())


def test_hero5_keeps_every_gyro_sample_and_stamps_accel_with_its_own_times(data: Path) -> None:
    import telemetry_parser

    raw = telemetry_parser.Parser(str(real_file("gopro/karma.mp4"))).telemetry()
    payloads = [(len(p["Gyroscope"]["Data"]), len(p["Accelerometer"]["Data"]), p["Accelerometer"]["Data"],
                 p["Accelerometer"]["Scale"]) for p in raw if "Gyroscope" in p]
    n_gyro, n_acc = sum(p[0] for p in payloads), sum(p[1] for p in payloads)
    s = open_session(data / "karma")
    a = s.arrays("imu")
    assert len(a["t_ns"]) == n_gyro == 4795  # every gyro sample (no 0.5 s gaps)
    assert abs(s.meta["streams"]["imu"]["rate_hz"] - 397.55) < 0.1
    assert np.max(np.diff(a["t_ns"])) < 1.5 * np.median(np.diff(a["t_ns"]))
    assert abs(s.meta["provenance"]["accel_rate_hz"] - 198.7) < 0.1 and n_acc == 2397
    # Each raw accelerometer sample, at the time its own rate gives it over the whole clip, is what the
    # session holds then: true at the end of the clip too (stamped with gyro times it ended at 6 s).
    acc_raw = np.concatenate([np.array([[d["x"], d["y"], d["z"]] for d in p[2]]) / p[3] for p in payloads])
    t_acc = np.arange(n_acc) * (len(a["t_ns"]) * np.median(np.diff(a["t_ns"]))) / n_acc + a["t_ns"][0]
    up_raw = acc_raw[:, 0]  # GPMF "up/down" channel of the HERO5: gravity and the drone's motion
    up_stored = np.interp(t_acc, a["t_ns"], a["ax"])  # normalised x is that channel (gravity along it)
    last = t_acc > t_acc[-1] * 0.5
    assert np.corrcoef(up_raw[last], up_stored[last])[0, 1] > 0.95
    assert np.median(np.abs(up_raw - up_stored)) < 0.1  # (interpolated twice: to the gyro times and back)


def test_stabilisation_flags_come_from_the_files(data: Path) -> None:
    stab = {n: open_session(data / n).meta["rig"]["stabilization"] for n in CLIPS}
    assert stab["karma"]["in_camera"] is False and "EISA='N'" in stab["karma"]["detail"]
    for n in ("hero7", "max-heromode"):
        assert stab[n]["in_camera"] is True and "HyperSmooth" in stab[n]["detail"]


def test_the_three_clips_sync_as_their_stabilisation_allows(data: Path) -> None:
    karma = _sync(data, "karma")["clocks"]["imu"]
    assert karma["verdict"] in ("ok", "suspect") and karma["peak_ncc"] > 0.95
    if karma["verdict"] == "suspect":  # the real reason: the gimbal turns the camera in only one stretch
        assert "agree in only 1 window" in karma["reason"] and "drift not measurable" in karma["reason"]
    assert karma["sigma_ms"] < QUARTER_FRAME_MS and -60 < karma["offset_ms"] < 0
    for n in ("hero7", "max-heromode"):
        c = _sync(data, n)["clocks"]["imu"]
        assert c["verdict"] in ("failed", "suspect") and "stabilisation" in c["reason"], (n, c["reason"])
        assert "HyperSmooth" in c["reason"]


def test_gyro_axes_per_model_are_the_ones_the_pictures_show(data: Path) -> None:
    """The importer's per-model R_camera_imu ranks first of the 24 signed axis permutations on each clip."""
    def ranking(name: str, horizon: float | None) -> tuple[list[dict], np.ndarray]:
        s = open_session(data / name)
        a = s.arrays("imu")
        vis = visual_rotations(s.video_path, s.meta["rig"])
        return rank_axes(vis, a["t_ns"], np.c_[a["gx"], a["gy"], a["gz"]], horizon_s=horizon), \
            np.asarray(s.meta["rig"]["imu"]["R_camera_imu"])

    def ncc_of(r: list[dict], R: np.ndarray) -> float:
        return next(x["ncc"] for x in r if np.allclose(x["R"], R))

    r, R = ranking("karma", None)  # HERO5, no stabilisation: frame by frame
    assert np.allclose(R, GOPRO_AXES["HERO5 Black"]) and np.allclose(r[0]["R"], R) and r[0]["ncc"] > 0.95
    # one pan dominates: every candidate within 0.01 shares the pan axis (camera y = −n_x) with the table
    assert all(np.allclose(x["R"][1], R[1]) for x in r if x["ncc"] > r[0]["ncc"] - 0.01)
    assert ncc_of(r, R_CAMERA_NORMALIZED) < 0.2  # the old diag(1, −1, −1)
    r, R = ranking("hero7", 0.5)  # HyperSmooth leaves the slow turns: compare rotation over 0.5 s
    assert np.allclose(R, GOPRO_AXES["HERO7 Black"]) and np.allclose(r[0]["R"], R) and r[0]["ncc"] - r[1]["ncc"] > 0.1
    r, R = ranking("max-heromode", None)
    assert np.allclose(R, GOPRO_AXES["GoPro Max"]) and np.allclose(r[0]["R"], R)
    assert ncc_of(r, R) - ncc_of(r, R_CAMERA_NORMALIZED) > 0.3


def _known_shift_errors(data: Path) -> tuple[np.ndarray, dict]:
    shifts = list(np.round(np.random.default_rng(18).uniform(-300, 300, 10), 3))
    r = known_shifts(data / "karma", shifts)
    return np.abs([row["error_ms"] for row in r["rows"]]), r


def test_known_shifts_on_the_real_hero5(data: Path) -> None:
    """Random off-grid shifts of the IMU timestamps in ±300 ms come back within ¼ frame and the drift does
    not move by more than 50 ppm (docs/sync.md has the table)."""
    errs, r = _known_shift_errors(data)
    assert len(errs) == 10 and np.all(errs <= QUARTER_FRAME_MS), r["rows"]
    assert r["drift_range_ppm"] <= 50.0


def test_known_shifts_on_the_real_hero5_have_a_median_error_of_at_most_1ms(data: Path) -> None:
    errs, r = _known_shift_errors(data)
    assert np.median(errs) <= 1.0, r["rows"]


def test_lens_mode_fov_is_marked_assumed(data: Path) -> None:
    rig = open_session(data / "karma").meta["rig"]
    assert rig["lens"]["fov_mode"] == "medium" and rig["fov_assumed"] is True
    assert "lens mode" in rig["intrinsics_source"] and rig["camera_model"] == "opencv_fisheye"
    assert abs(rig["fov_deg"]["h"] - 94.4) < 0.5


def test_audit_and_export_on_a_store_of_real_episodes(data: Path, tmp_path: Path) -> None:
    out = _cli(["episodes", data])
    assert "wrote 1 episodes" in out  # the HyperSmooth clips failed sync and stay out
    _cli(["audit", data / "episodes"])
    audit = json.loads((data / "episodes" / "audit.json").read_text())
    cap = {c["session_id"]: c for c in audit["capture"]}
    assert cap["karma"]["checks"]["fov_v"]["assumed"] is True
    assert any("assumed" in n for n in cap["karma"]["notes"]) and not any("FOV" in x for x in cap["karma"]["reasons"])
    assert audit["summary"]["usable_research"] == 1
    out = _cli(["export", data / "episodes", "--use", "research", "--out", tmp_path / "x"])
    info = json.loads((tmp_path / "x" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 1 and info["fps"] == 30
