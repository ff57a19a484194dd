"""Importers: each real format, built from a session with known clocks, imports → validates → syncs.

The source is a rotation-only synthetic session (egoworld.sync.synthetic: exact image motion,
known offsets, no drift) — the 4-s 96² sim sessions sync to only ±30 ms (measured), too loose to
pin a ¼-frame claim. Each format's fixture is written in its published layout
(tests/fixtures_import/), imported, opened, synced, and the recovered offset compared with the
one the fixture implies; the streams are compared with the originals.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.spatial.transform import Rotation as R
from typer.testing import CliRunner

from egoworld.capture.importers.aria import import_aria
from egoworld.capture.importers.camera import (
    GOPRO_AXES,
    R_CAMERA_NORMALIZED,
    camera_axes,
    import_camera,
    split_rates,
    stabilisation,
)
from egoworld.capture.importers.common import ImportFormatError, load_camera_file
from egoworld.capture.importers.egodex import import_egodex
from egoworld.capture.importers.generic import import_generic
from egoworld.session import open_session
from egoworld.sync import sync_session
from egoworld.sync.synthetic import SynthConfig, make_session
from tests.fixtures_import import build

QUARTER_FRAME_MS = 1000 / 30 / 4


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("import_src")
    return make_session(root / "src", SynthConfig(seed=21, seconds=8.0, imu_offset_ms=180.0, tracker_offset_ms=-90.0,
                                                  drop_rate=0.005))


def clock_fits(session_dir: Path, out: Path) -> dict[str, dict]:
    """Per-clock fits (offset_ms, verdict, confidence, ...) as ``sync_session`` reports them.

    Goes through ``sync_session`` itself for every format, IMU-only action cameras included, so a
    regression in the episode or verdict code of such sessions fails these tests.
    """
    report = sync_session(session_dir, out)
    assert report["clocks"], report["reason"]
    return report["clocks"]


# ---------------------------------------------------------------- camera telemetry


def test_gopro_gpmf_import_and_sync(source, tmp_path):
    fx = build.gopro_mp4(source, tmp_path / "GX010001.MP4")
    out = import_camera(fx["mp4"], tmp_path / "s", consent="research", hfov_deg=70.0)
    s = open_session(out)
    rig = s.meta["rig"]
    assert rig["camera_make"] == "GoPro" and rig["camera_name"] == "HERO8 Black"
    assert rig["lens"]["fov_mode"] == "wide" and abs(rig["lens"]["diagonal_fov_deg"] - 122.6) < 1e-3
    assert rig["stabilization"]["in_camera"] is False
    assert np.allclose(rig["imu"]["R_camera_imu"], camera_axes("GoPro", "HERO8 Black")[0])
    assert "not measured" in rig["imu"]["source"] and rig["fov_assumed"] is True  # --hfov is not a calibration
    assert s.consent["scopes"] == ["research"] and s.meta["consent_status"] == "research"
    # streams match the originals (int16 quantisation of the GPMF counts)
    a = s.arrays("imu")
    gyro_cam = np.c_[a["gx"], a["gy"], a["gz"]] @ np.asarray(rig["imu"]["R_camera_imu"]).T
    acc_cam = np.c_[a["ax"], a["ay"], a["az"]] @ np.asarray(rig["imu"]["R_camera_imu"]).T
    assert len(a["t_ns"]) == len(fx["grid_s"])
    assert np.allclose(a["t_ns"] * 1e-9, fx["grid_s"], atol=1e-6)
    assert np.max(np.abs(gyro_cam - fx["gyro"])) <= 0.51 * fx["quant"][0] + 1e-9
    assert np.max(np.abs(acc_cam - fx["accel"])) <= 0.51 * fx["quant"][1] + 1e-6
    fits = clock_fits(out, tmp_path / "sync")
    assert fits["imu"]["verdict"] == "ok"
    assert abs(fits["imu"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_gopro_stabilised_is_recorded(source, tmp_path):
    fx = build.gopro_mp4(source, tmp_path / "GX010002.MP4", stabilised=True)
    s = open_session(import_camera(fx["mp4"], tmp_path / "s", hfov_deg=70.0))
    stab = s.meta["rig"]["stabilization"]
    assert stab["in_camera"] is True and "HS High" in stab["detail"]
    assert "STABILISATION" in s.meta["notes"]
    assert s.consent is None and s.meta["consent_status"] == "unknown"
    # sync reads the flag (from the GPMF settings): never a confident offset for stabilised footage
    fits = clock_fits(s.path, tmp_path / "sync")
    assert fits["imu"]["verdict"] == "suspect" and "stabilisation is on" in fits["imu"]["reason"]
    assert "HS High" in fits["imu"]["reason"]


def test_stabilised_override_caps_the_sync_verdict(source, tmp_path):
    # The same GPMF clip imported twice, stabilisation stated with --stabilised no / yes: identical
    # pixels and gyro, so the offset is the same — only the verdict and the confidence differ.
    fx = build.gopro_mp4(source, tmp_path / "GX010003.MP4")
    no = clock_fits(import_camera(fx["mp4"], tmp_path / "no", hfov_deg=70.0, stabilised="no"), tmp_path / "sync")["imu"]
    yes = clock_fits(import_camera(fx["mp4"], tmp_path / "yes", hfov_deg=70.0, stabilised="yes"), tmp_path / "sync")["imu"]
    assert no["verdict"] == "ok" and yes["verdict"] == "suspect"
    assert "stabilisation is on" in yes["reason"] and "--stabilised" in yes["reason"]
    assert yes["offset_ms"] == no["offset_ms"] and yes["confidence"] < 0.6 * no["confidence"]


def test_camera_import_then_sync_on_the_command_line(source, tmp_path):
    """``egoworld import camera clip.mp4 --out D && egoworld sync D``, exactly, through the real CLI app.

    No --hfov: the intrinsics come from the GPMF ZFOV (a pinhole guess for a fisheye-class lens),
    as a user would get them, so the clock may be only suspect — but it must sync, within ¼ frame.
    """
    from egoworld.cli import app

    fx = build.gopro_mp4(source, tmp_path / "clip.mp4")
    d = tmp_path / "D"
    r = CliRunner().invoke(app, ["import", "camera", str(fx["mp4"]), "--out", str(d)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["sync", str(d)])
    assert r.exit_code == 0, r.output
    sid = open_session(d).id
    report = json.loads((d / "aligned" / sid / "sync.json").read_text())
    assert report["verdict"] in ("ok", "suspect") and set(report["clocks"]) == {"imu"}
    assert abs(report["clocks"]["imu"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS
    import pyarrow.parquet as pq

    t = pq.read_table(d / "aligned" / sid / "aligned.parquet")
    assert t.num_rows == report["video"]["frames"]
    assert not t.column("head_valid").to_numpy(zero_copy_only=False).any()
    assert t.column("imu_valid").to_numpy(zero_copy_only=False).mean() > 0.9


def test_gcsv_sidecar_import_and_sync(source, tmp_path):
    fx = build.gcsv_sidecar(source, tmp_path / "clip.mp4", extra_shift_s=0.0375)
    s = open_session(import_camera(fx["mp4"], tmp_path / "s", hfov_deg=70.0))
    a = s.arrays("imu")
    gyro_cam = np.c_[a["gx"], a["gy"], a["gz"]] @ R_CAMERA_NORMALIZED.T
    assert np.allclose(a["t_ns"] * 1e-9, fx["grid_s"], atol=1e-6)
    assert np.max(np.abs(gyro_cam - fx["gyro"])) < 0.0006  # gscale 0.0005 rad/s per count
    fits = clock_fits(s.path, tmp_path / "sync")
    assert abs(fits["imu"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_camera_bad_inputs(source, tmp_path):
    plain = tmp_path / "plain.mp4"
    build.copy_video(source, plain, 30.0)
    with pytest.raises(ImportFormatError, match="plain.mp4.*(no camera telemetry|no gyro)"):
        import_camera(plain, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    # a gcsv whose gscale claims deg/s counts are rad/s → implausible gyro → unit error naming the file
    fx = build.gcsv_sidecar(source, tmp_path / "clip.mp4")
    text = fx["gcsv"].read_text().replace("gscale,0.0005", "gscale,0.5")
    fx["gcsv"].write_text(text)
    with pytest.raises(ImportFormatError, match=r"clip\.(mp4|gcsv).*deg/s"):
        import_camera(fx["mp4"], tmp_path / "b")
    # non-monotonic telemetry timestamps
    lines = fx["gcsv"].read_text().replace("gscale,0.5", "gscale,0.0005").splitlines()
    i = lines.index("t,gx,gy,gz,ax,ay,az") + 50
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    fx["gcsv"].write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match="not strictly increasing"):
        import_camera(fx["mp4"], tmp_path / "c")
    # not a video at all (unknown codec / container)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\1\2\3" * 1000)
    with pytest.raises(ImportFormatError, match="junk.mp4"):
        import_camera(junk, tmp_path / "d")
    assert not any(p.name in ("b", "c", "d") for p in tmp_path.iterdir())


# ---------------------------------------------------------------- generic


def test_generic_import_and_sync(source, tmp_path):
    fx = build.generic_files(source, tmp_path / "in")
    out = import_generic(fx["mp4"], tmp_path / "s", imu=fx["imu"], time_unit="ms",
                         colmap={"t": "timestamp", "gx": "gyro_x", "gy": "gyro_y", "gz": "gyro_z", "ax": "acc_x", "ay": "acc_y", "az": "acc_z"},
                         gyro_unit="deg/s", accel_unit="g", hfov_deg=70.0, consent="commercial")
    s = open_session(out)
    assert s.consent["scopes"] == ["research", "commercial"]
    orig = open_session(source).arrays("imu")
    a = s.arrays("imu")
    assert np.array_equal(a["t_ns"] // 1000, orig["t_ns"] // 1000)
    assert np.allclose(a["gx"], orig["gx"], atol=1e-7) and np.allclose(a["az"], orig["az"], atol=1e-6)
    fits = clock_fits(out, tmp_path / "sync")
    assert abs(fits["imu"]["offset_ms"] - fx["expected"]["imu"]) < QUARTER_FRAME_MS


def test_generic_head_pose_units_and_errors(source, tmp_path):
    fx = build.generic_files(source, tmp_path / "in")
    # wrong time unit: µs read as seconds → implausible sample interval; epoch µs as s → int64 overflow
    with pytest.raises(ImportFormatError, match="head.parquet.*wrong time unit"):
        import_generic(fx["mp4"], tmp_path / "x", head_pose=fx["head_pose"], colmap={"t": "time_us"}, time_unit="s")
    with pytest.raises(ImportFormatError, match="head.parquet.*overflows int64"):
        import_generic(fx["mp4"], tmp_path / "x", head_pose=fx["head_pose"], colmap={"t": "epoch_us"}, time_unit="s")
    out = import_generic(fx["mp4"], tmp_path / "s", head_pose=fx["head_pose"], colmap={"t": "time_us"}, time_unit="us",
                         hfov_deg=70.0)
    fits = clock_fits(out, tmp_path / "sync")
    assert abs(fits["tracker"]["offset_ms"] - fx["expected"]["tracker"]) < QUARTER_FRAME_MS
    with pytest.raises(ImportFormatError, match="imu.csv.*missing column 'gx'"):
        import_generic(fx["mp4"], tmp_path / "y", imu=fx["imu"], colmap={"t": "timestamp"}, time_unit="ms")
    with pytest.raises(ImportFormatError, match="imu.csv.*deg/s"):  # deg/s data declared rad/s
        import_generic(fx["mp4"], tmp_path / "z", imu=fx["imu"], time_unit="ms", colmap={
            "t": "timestamp", "gx": "gyro_x", "gy": "gyro_y", "gz": "gyro_z", "ax": "acc_x", "ay": "acc_y", "az": "acc_z"},
            accel_unit="g")
    assert not any((tmp_path / n).exists() for n in ("x", "y", "z"))


def test_camera_files_opencv_and_kalibr(tmp_path):
    (tmp_path / "cv.yaml").write_text("%YAML:1.0\nimage_width: 256\nimage_height: 256\ncamera_matrix: !!opencv-matrix\n"
                                      "  rows: 3\n  cols: 3\n  dt: d\n  data: [200., 0., 128., 0., 201., 127., 0., 0., 1.]\n"
                                      "dist_coeffs: [0.1, -0.05, 0.0, 0.0, 0.0]\n")
    cam = load_camera_file(tmp_path / "cv.yaml", 128, 128)  # scaled to the video size
    assert cam["intrinsics"] == {"fx": 100.0, "fy": 100.5, "cx": 64.0, "cy": 63.5} and cam["camera_model"] == "opencv"
    (tmp_path / "camchain.yaml").write_text("cam0:\n  camera_model: pinhole\n  intrinsics: [300, 301, 160, 120]\n"
                                            "  distortion_model: equidistant\n  distortion_coeffs: [0.01, 0.02, 0.0, 0.0]\n"
                                            "  resolution: [320, 240]\n")
    cam = load_camera_file(tmp_path / "camchain.yaml", 320, 240)
    assert cam["camera_model"] == "opencv_fisheye" and cam["intrinsics"]["fy"] == 301
    (tmp_path / "bad.json").write_text(json.dumps({"focal": 3}))
    with pytest.raises(ImportFormatError, match="bad.json.*no camera matrix"):
        load_camera_file(tmp_path / "bad.json")


# ---------------------------------------------------------------- EgoDex


@pytest.mark.parametrize("lag_ms", [0.0, 60.0])
def test_egodex_import_and_sync(source, tmp_path, lag_ms):
    fx = build.egodex_pair(source, tmp_path / "egodex" / "pick_cup", lag_s=lag_ms / 1e3)
    out = import_egodex(fx["mp4"], tmp_path / "s", consent="none")
    s = open_session(out)
    assert s.consent["scopes"] == [] and s.meta["task"]["id"] == "pick_cup"
    h = s.arrays("head_pose")
    assert np.allclose(np.c_[h["px"], h["py"], h["pz"]], fx["head_p"], atol=1e-9)
    r = R.from_quat(np.c_[h["qw"], h["qx"], h["qy"], h["qz"]], scalar_first=True)
    assert np.max((r.inv() * fx["head_r"]).magnitude()) < 1e-9
    hands = s.arrays("hands")
    for side in ("left", "right"):
        m = hands["side"] == side
        assert np.allclose(hands["keypoints"][m], fx["hands"][side], atol=1e-9)
        # the rebuilt wrist frame is ours: the keypoints in it look like egoworld.body's hand
        q = np.c_[hands["wrist_qw"][m], hands["wrist_qx"][m], hands["wrist_qy"][m], hands["wrist_qz"][m]]
        local = R.from_quat(q[:1], scalar_first=True).inv().apply(hands["keypoints"][m][0] - hands["keypoints"][m][0, 0])
        from egoworld.body import KEYPOINT_NAMES

        assert local[KEYPOINT_NAMES.index("middle_mcp"), 0] > 0.05  # fingers along +x
        thumb_y = local[KEYPOINT_NAMES.index("thumb_mcp"), 1]
        assert thumb_y > 0 if side == "right" else thumb_y < 0
    fits = clock_fits(out, tmp_path / "sync")
    assert fits["tracker"]["verdict"] in ("ok", "suspect")
    assert abs(fits["tracker"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_egodex_bad_inputs(source, tmp_path):
    fx = build.egodex_pair(source, tmp_path / "e")
    with h5py.File(fx["hdf5"], "a") as f:
        del f["transforms/rightThumbTip"]
    with pytest.raises(ImportFormatError, match=r"0\.hdf5.*right hand is incomplete.*rightThumbTip"):
        import_egodex(fx["mp4"], tmp_path / "a")
    with h5py.File(fx["hdf5"], "a") as f:
        cam = f["transforms/camera"][()]
        del f["transforms/camera"]
        f["transforms/camera"] = cam[:-5]
    with pytest.raises(ImportFormatError, match="camera transforms but 0.mp4 has"):
        import_egodex(fx["mp4"], tmp_path / "b")
    fx["hdf5"].write_bytes(b"not hdf5")
    with pytest.raises(ImportFormatError, match="not a readable HDF5"):
        import_egodex(fx["mp4"], tmp_path / "c")
    assert not any((tmp_path / n).exists() for n in "abc")


# ---------------------------------------------------------------- Project Aria MPS


def test_aria_mps_import_and_sync(source, tmp_path):
    fx = build.aria_mps(source, tmp_path / "aria")
    out = import_aria(fx["mp4"], tmp_path / "s", fx["mps"], video_start_us=fx["start_us"])
    s = open_session(out)
    h = s.arrays("head_pose")
    o = fx["head_pose"]
    assert np.allclose(np.c_[h["px"], h["py"], h["pz"]], np.c_[o["px"], o["py"], o["pz"]], atol=1e-6)
    r = R.from_quat(np.c_[h["qw"], h["qx"], h["qy"], h["qz"]], scalar_first=True)
    ro = R.from_quat(np.c_[o["qw"], o["qx"], o["qy"], o["qz"]], scalar_first=True)
    assert np.max((r.inv() * ro).magnitude()) < 1e-6
    fits = clock_fits(out, tmp_path / "sync")
    assert fits["tracker"]["verdict"] == "ok"
    assert abs(fits["tracker"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_aria_bad_inputs(source, tmp_path):
    fx = build.aria_mps(source, tmp_path / "aria")
    csv = fx["mps"] / "slam" / "closed_loop_trajectory.csv"
    text = csv.read_text()
    csv.write_text(text.replace("qw_world_device", "qw_wrong"))
    with pytest.raises(ImportFormatError, match=r"closed_loop_trajectory.csv.*qw_world_device"):
        import_aria(fx["mp4"], tmp_path / "a", fx["mps"])
    (fx["mps"] / "slam" / "online_calibration.jsonl").write_text("{}\n")
    csv.write_text(text)
    with pytest.raises(ImportFormatError, match="online_calibration.jsonl.*camera-rgb"):
        import_aria(fx["mp4"], tmp_path / "b", fx["mps"])


# ---------------------------------------------------------------- consent + CLI


def test_consent_file_and_cli(source, tmp_path):
    import typer

    from egoworld.capture.importers.cli import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command so that typer keeps "import" as a sub-command
        pass

    fx = build.gcsv_sidecar(source, tmp_path / "clip.mp4")
    consent = tmp_path / "consent.yaml"
    consent.write_text("subject_id: p7\nscopes: [research]\ngranted_at: 2026-01-02\nexpires_at: null\nrevoked_at: null\n")
    r = CliRunner().invoke(app, ["import", "camera", str(fx["mp4"]), "--out", str(tmp_path / "s"), "--consent", str(consent),
                                 "--hfov", "70"])
    assert r.exit_code == 0, r.output
    s = open_session(tmp_path / "s")
    assert s.consent["subject_id"] == "p7" and s.consent["granted_at"] == "2026-01-02"
    consent.write_text("subject_id: p7\nscopes: [everything]\nexpires_at: null\nrevoked_at: null\n")
    r = CliRunner().invoke(app, ["import", "camera", str(fx["mp4"]), "--out", str(tmp_path / "t"), "--consent", str(consent)])
    assert r.exit_code == 2 and "consent.yaml" in r.output and "unknown consent scopes" in r.output
    assert not (tmp_path / "t").exists()


# ---------------------------------------------------------------- real-camera behaviours, on fixtures


def test_gopro_mixed_rate_imu_keeps_every_gyro_sample_and_accel_times(source, tmp_path):
    """A HERO5 logs the accelerometer at half the gyro's rate in the same payloads: every gyro sample is
    kept, and the accelerometer lands at its own times (paired by index it ran twice as fast)."""
    fx = build.gopro_mp4(source, tmp_path / "GOPR0001.MP4", accel_every=2, model="HERO5 Black")
    s = open_session(import_camera(fx["mp4"], tmp_path / "s", hfov_deg=70.0))
    rig, a = s.meta["rig"], s.arrays("imu")
    assert len(a["t_ns"]) == len(fx["grid_s"]) and np.allclose(a["t_ns"] * 1e-9, fx["grid_s"], atol=1e-6)
    assert abs(s.meta["provenance"]["accel_rate_hz"] - build.IMU_HZ / 2) < 0.5
    R = np.asarray(rig["imu"]["R_camera_imu"])
    assert np.allclose(R, GOPRO_AXES["HERO5 Black"]) and rig["imu"]["source"].startswith("measured")
    acc_cam = np.c_[a["ax"], a["ay"], a["az"]] @ R.T
    err = np.abs(acc_cam - fx["accel"])  # interpolated between its own samples; at the very end the spread over the
    assert np.median(err) < 0.01 and np.max(err) < 0.1  # file is off by ≤ 1 gyro period (odd sample count)
    paired = np.abs(fx["accel"][::2][: len(err) // 2] - fx["accel"][: len(err) // 2])  # what pairing by index gives
    assert np.median(paired) > 10 * np.median(err)
    fits = clock_fits(s.path, tmp_path / "sync")
    assert fits["imu"]["verdict"] == "ok" and abs(fits["imu"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_split_rates_spreads_each_stream_over_the_file():
    rows = [{"timestamp_ms": 2.5 * i, "gyro": (float(i), 0.0, 0.0), "accl": (float(i), 0.0, 9.8) if i < 4 else None}
            for i in range(8)]
    out = split_rates(rows, Path("x.mp4"))
    assert np.allclose(out["t_s"], 0.0025 * np.arange(8)) and out["accel_rate_hz"] == pytest.approx(200.0)
    # accel sample j is at 5 ms·j: at gyro time 7.5 ms it is halfway between samples 1 and 2
    assert out["accel"][3, 0] == pytest.approx(1.5) and out["accel"][-1, 0] == pytest.approx(3.0)


@pytest.mark.parametrize("settings, on, words", [
    ({"EISA": "N"}, False, "off"),  # HERO5: EISA only, 'N' = off (it read as on before)
    ({"EISE": "N", "EISA": "N/A"}, False, "off"),
    ({"EISE": "Y", "EISA": "HS EIS"}, True, "HyperSmooth (HS EIS)"),
    ({"EISE": "Y", "EISA": "HS HLevel"}, True, "HyperSmooth (HS HLevel)"),
    ({"EISA": "Y"}, True, "electronic stabilisation"),
])
def test_gopro_stabilisation_flags(settings, on, words):
    stab = stabilisation(settings, "auto")
    assert stab["in_camera"] is on and words in stab["detail"] and stab["source"] == "GPMF"


def test_camera_store_without_objects_audits_and_exports(source, tmp_path):
    """Imported camera sessions have no objects: the audit's object × task map is empty, and used to crash."""
    from egoworld.cli import app

    fx = build.gopro_mp4(source, tmp_path / "clip.mp4")
    d = tmp_path / "D"
    run = CliRunner().invoke
    assert run(app, ["import", "camera", str(fx["mp4"]), "--out", str(d / "clip"), "--consent", "research"]).exit_code == 0
    assert run(app, ["sync", str(d)]).exit_code == 0
    r = run(app, ["episodes", str(d)])
    assert r.exit_code == 0 and "wrote 1 episodes" in r.output, r.output
    r = run(app, ["audit", str(d / "episodes")])
    assert r.exit_code == 0, r.output
    audit = json.loads((d / "episodes" / "audit.json").read_text())
    assert audit["summary"]["episodes"] == 1 and audit["coverage"]["by"]["objects"]["frames"] == {}
    assert "no cells" in (d / "episodes" / "report.html").read_text()
    cap = audit["capture"][0]
    assert cap["checks"]["fov_h"]["assumed"] is True and any("ZFOV" in n for n in cap["notes"])
    r = run(app, ["export", str(d / "episodes"), "--use", "research", "--out", str(tmp_path / "x")])
    cleared = audit["summary"]["usable_research"]
    assert (r.exit_code == 0) == (cleared == 1), r.output


def _rotated_imu_csv(fx: dict, R_camera_imu: np.ndarray, dst: Path) -> Path:
    """The fixture's IMU CSV as a sensor mounted with other axes would log it: v_imu = Rᵀ·v_camera."""
    import pyarrow.csv as pcsv

    t = pcsv.read_csv(fx["imu"]).to_pydict()
    g = np.c_[t["gyro_x"], t["gyro_y"], t["gyro_z"]] @ R_camera_imu
    a = np.c_[t["acc_x"], t["acc_y"], t["acc_z"]] @ R_camera_imu
    lines = ["timestamp,gyro_x,gyro_y,gyro_z,acc_x,acc_y,acc_z"]
    lines += [",".join(f"{x:.9f}" for x in (t["timestamp"][i], *g[i], *a[i])) for i in range(len(g))]
    dst.write_text("\n".join(lines) + "\n")
    return dst


GENERIC_MAP = {"t": "timestamp", "gx": "gyro_x", "gy": "gyro_y", "gz": "gyro_z", "ax": "acc_x", "ay": "acc_y", "az": "acc_z"}


def test_generic_imu_to_camera_from_kalibr_euroc_or_the_option(source, tmp_path):
    """A visual-inertial recording whose IMU is turned 90° from the camera: the calibration's extrinsics are used."""
    from egoworld.cli import app

    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # R_camera_imu
    fx = build.generic_files(source, tmp_path / "in")
    imu = _rotated_imu_csv(fx, R, tmp_path / "imu_rot.csv")
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, [0.01, 0.02, 0.0]
    kalibr = tmp_path / "camchain.yaml"
    rig = open_session(source).meta["rig"]
    kalibr.write_text("cam0:\n  camera_model: pinhole\n  intrinsics: [%f, %f, %f, %f]\n  distortion_model: radtan\n"
                      "  distortion_coeffs: [0, 0, 0, 0]\n  resolution: [%d, %d]\n  T_cam_imu:\n%s" % (
                          *(rig["intrinsics"][k] for k in ("fx", "fy", "cx", "cy")), rig["width"], rig["height"],
                          "".join(f"  - {list(map(float, row))}\n" for row in T)))
    kw = dict(imu=imu, time_unit="ms", colmap=GENERIC_MAP, gyro_unit="deg/s", accel_unit="g")
    s = open_session(import_generic(fx["mp4"], tmp_path / "k", camera_file=kalibr, **kw))
    assert np.allclose(s.meta["rig"]["imu"]["R_camera_imu"], R) and "Kalibr" in s.meta["rig"]["imu"]["source"]
    assert s.meta["provenance"]["imu_to_camera"]["source"] == s.meta["rig"]["imu"]["source"]
    fits = clock_fits(s.path, tmp_path / "sync_k")
    assert fits["imu"]["verdict"] == "ok" and abs(fits["imu"]["offset_ms"] - fx["expected"]["imu"]) < QUARTER_FRAME_MS
    # Without the extrinsics the rotation is identity, and session.json says it was assumed: sync cannot match.
    plain = open_session(import_generic(fx["mp4"], tmp_path / "p", hfov_deg=70.0, **kw))
    assert "assumed identity" in plain.meta["rig"]["imu"]["source"]
    assert clock_fits(plain.path, tmp_path / "sync_p")["imu"]["peak_ncc"] < fits["imu"]["peak_ncc"] - 0.2
    # EuRoC sensor.yaml: intrinsics + T_BS (the camera in the IMU frame) through --camera
    euroc = tmp_path / "sensor.yaml"
    r = s.meta["rig"]
    euroc.write_text("sensor_type: camera\nT_BS:\n  cols: 4\n  rows: 4\n  data: %s\nrate_hz: 30\nresolution: [%d, %d]\n"
                     "camera_model: pinhole\nintrinsics: [%f, %f, %f, %f]\ndistortion_model: radial-tangential\n"
                     "distortion_coefficients: [0, 0, 0, 0]\n" % ([float(x) for x in np.linalg.inv(T).ravel()], r["width"], r["height"],
                                                                   *(r["intrinsics"][k] for k in ("fx", "fy", "cx", "cy"))))
    e = open_session(import_generic(fx["mp4"], tmp_path / "e", camera_file=euroc, **kw))
    assert np.allclose(e.meta["rig"]["imu"]["R_camera_imu"], R, atol=1e-9) and "T_BS" in e.meta["rig"]["imu"]["source"]
    # --imu-to-camera on the command line: 9 numbers; a matrix that is no rotation is refused, named
    base = ["import", "generic", str(fx["mp4"]), "--imu", str(imu), "--time-unit", "ms", "--gyro-unit", "deg/s",
            "--accel-unit", "g", "--map", ",".join(f"{k}={v}" for k, v in GENERIC_MAP.items()), "--hfov", "70"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "o"), "--imu-to-camera", "0,-1,0,1,0,0,0,0,1"])
    assert res.exit_code == 0, res.output
    o = open_session(tmp_path / "o")
    assert np.allclose(o.meta["rig"]["imu"]["R_camera_imu"], R) and o.meta["rig"]["imu"]["source"] == "stated with --imu-to-camera"
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "bad"), "--imu-to-camera", "1,1,0,0,1,0,0,0,1"])
    assert res.exit_code == 2 and "not a rotation" in res.output


def test_import_help_is_one_subcommand_per_format():
    from egoworld.cli import app

    out = CliRunner().invoke(app, ["import", "camera", "--help"]).output
    assert "--stabilised" in out and "--telemetry" in out
    for other in ("--mps", "--state-map", "--hdf5", "--imu-to-camera", "--episode"):
        assert other not in out
    listing = CliRunner().invoke(app, ["import", "--help"]).output
    assert all(f in listing for f in ("camera", "generic", "egodex", "aria", "lerobot"))
