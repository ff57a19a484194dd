"""LeRobot v3, Aria MPS hand tracking and phone Sensor Logger imports: fixture → import → open → compare → sync.

Each fixture is written in its published layout from a synthetic session with known clocks
(tests/fixtures_import/more.py). A LeRobot dataset is built twice: by our own pipeline (sync +
``egoworld episodes``, whose head/wrist columns must map back exactly) and by hand as a robot
dataset with several episodes in one data file and one video (from_timestamp > 0), checked by
egoworld.dataset.check (LeRobot 0.4.4's loader, re-done) before it is imported.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.transform import Rotation as R
from typer.testing import CliRunner

from egoworld.capture.importers.aria import import_aria
from egoworld.capture.importers.camera import import_camera
from egoworld.capture.importers.common import ImportFormatError
from egoworld.capture.importers.lerobot import (
    import_lerobot,
    import_lerobot_all,
    parse_state_map,
)
from egoworld.session import open_session
from egoworld.sync.synthetic import SynthConfig, make_session
from egoworld.video import read_video
from tests.fixtures_import import build, more
from tests.test_import import QUARTER_FRAME_MS, clock_fits


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("import_more_src")
    return make_session(root / "src", SynthConfig(seed=21, seconds=8.0, imu_offset_ms=180.0, tracker_offset_ms=-90.0,
                                                  drop_rate=0.005, dropped_frames=[40]))


@pytest.fixture(scope="module")
def long_source(tmp_path_factory) -> Path:
    """16 s at 112²: two 8-s robot episodes, each long enough for sync to fit its clock."""
    root = tmp_path_factory.mktemp("import_more_long")
    return make_session(root / "src", SynthConfig(seed=23, seconds=16.0, width=112, height=112, tracker_offset_ms=-90.0))


def _assert_same_frames(a: np.ndarray, b: np.ndarray) -> None:
    """Frame i of ``a`` is a (lossy) copy of frame i of ``b``: on average much closer to it than to
    b[i±1] (an off-by-one cut fails this), and close in absolute terms."""
    d = lambda x, y: np.mean(np.abs(x.astype(float) - y.astype(float)))
    same = d(a, b)
    assert same < 0.6 * d(a[1:], b[:-1]) and same < 0.6 * d(a[:-1], b[1:])
    assert same < 10.0


def _rot(a: dict) -> R:
    return R.from_quat(np.c_[a["qw"], a["qx"], a["qy"], a["qz"]], scalar_first=True)


# ---------------------------------------------------------------- LeRobot: our own store


def test_lerobot_egoworld_store_round_trip(source, tmp_path):
    store = more.egoworld_store([source], tmp_path / "data")
    out = import_lerobot(store, tmp_path / "s", episode=0)
    s = open_session(out)
    aligned = pq.read_table(tmp_path / "data" / "aligned" / "src" / "aligned.parquet").to_pydict()
    # the store fills the dropped frame 40 with a repeat; the session must have the gap back
    t_video = np.asarray(aligned["t_video_ns"])
    assert s.video["frames"] == len(t_video) and s.meta["provenance"]["frames_dropped_in_store"] == 1
    assert np.allclose(s.frame_times_ns * 1e-9, np.asarray(aligned["frame_nominal"]) / 30.0, atol=2e-6)
    head = s.arrays("head_pose")
    ok = np.asarray(aligned["head_valid"])
    assert len(head["t_ns"]) == ok.sum()
    p = np.c_[[np.asarray(aligned[f"head_p{c}"])[ok] for c in "xyz"]].T
    assert np.allclose(np.c_[head["px"], head["py"], head["pz"]], p, atol=1e-6)  # float32 in the store
    q = np.c_[[np.asarray(aligned[f"head_q{c}"])[ok] for c in "wxyz"]].T
    assert np.max((_rot(head).inv() * R.from_quat(q, scalar_first=True)).magnitude()) < 1e-6
    hands = s.arrays("hands")
    for side in ("left", "right"):
        m = hands["side"] == side
        v = np.asarray(aligned[f"{side}_valid"])
        kp = np.asarray(aligned[f"{side}_keypoints"])[v].reshape(-1, 21, 3)
        assert np.allclose(hands["keypoints"][m], kp, atol=1e-6)
        assert np.allclose(hands["wrist_px"][m], np.asarray(aligned[f"{side}_wrist_px"])[v], atol=1e-6)
    # frames: two lossy re-encodes of the same pictures, so check each is nearer its own source frame
    a, _ = read_video(s.video_path)
    b, _ = read_video(source / "video.mp4")
    assert a.shape == b.shape
    _assert_same_frames(a, b)
    assert (s.path / "motion" / "lerobot_state.parquet").exists() and "lerobot_state" in s.meta["extra_streams"]
    assert s.meta["consent_status"] == "unknown" and s.consent is None  # the synthetic session had no consent
    fits = clock_fits(out, tmp_path / "sync")
    assert abs(fits["lerobot"]["offset_ms"]) < QUARTER_FRAME_MS  # the store's rows are already on frame times


# ---------------------------------------------------------------- LeRobot: a robot dataset


def test_lerobot_robot_dataset_refuses_then_maps(long_source, tmp_path):
    from egoworld.dataset.check import check_store

    fx = more.robot_dataset(long_source, tmp_path / "so100", episodes=2, lag_s=0.05)
    assert check_store(fx["root"]) == []  # the fixture loads in LeRobot (as far as the re-done loader says)
    with pytest.raises(ImportFormatError, match=r"info.json.*no head motion.*--state-map"):
        import_lerobot(fx["root"], tmp_path / "x", episode=1)
    assert not (tmp_path / "x").exists()
    paths = import_lerobot_all(fx["root"], tmp_path / "all", state_map=parse_state_map(["head_pose=observation.pose"]),
                               quat_order="xyzw", consent="research")
    assert [p.name for p in paths] == ["so100_ep000000", "so100_ep000001"]
    for e, p in enumerate(paths):
        s = open_session(p)
        ep = fx["episodes"][e]
        assert np.allclose(s.frame_times_ns * 1e-9, ep["ts"], atol=2e-5)  # PTS = the episode's timestamp column
        frames, _ = read_video(s.video_path)
        assert len(frames) == fx["n"]
        _assert_same_frames(frames, ep["frames"])
        h = s.arrays("head_pose")
        assert np.allclose(np.c_[h["px"], h["py"], h["pz"]], ep["pose"][:, :3], atol=1e-6)
        assert np.max((_rot(h).inv() * R.from_quat(ep["pose"][:, 3:])).magnitude()) < 1e-6
        st = pq.read_table(s.path / "motion" / "lerobot_state.parquet")
        assert np.allclose(np.asarray(st.column("observation.state").combine_chunks().flatten()).reshape(-1, 6), ep["state"])
        assert np.allclose(np.asarray(st.column("action").combine_chunks().flatten()).reshape(-1, 6), ep["action"])
        assert s.meta["task"]["description"] == ["pick the cube", "open the drawer"][e]
        assert s.consent["scopes"] == ["research"]
        fits = clock_fits(p, tmp_path / f"sync{e}")
        assert fits["lerobot"]["verdict"] in ("ok", "suspect")
        assert abs(fits["lerobot"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_lerobot_bad_inputs(long_source, tmp_path):
    fx = more.robot_dataset(long_source, tmp_path / "ds", episodes=2)
    smap = parse_state_map(["head_pose=observation.pose"])
    with pytest.raises(ImportFormatError, match=r"--state-map.*head_pose=observation.state\[0:3\].*3 values"):
        import_lerobot(fx["root"], tmp_path / "a", state_map=parse_state_map(["head_pose=observation.state[0:3]"]))
    with pytest.raises(ImportFormatError, match=r"file-000.parquet.*observation.pose quaternion.*norm"):
        _bad_quat(fx["root"], tmp_path / "a")
    with pytest.raises(ImportFormatError, match="has no episode 7"):
        import_lerobot(fx["root"], tmp_path / "a", episode=7, state_map=smap)
    # non-monotonic timestamps in the data file
    data = fx["root"] / "data/chunk-000/file-000.parquet"
    t = pq.read_table(data)
    ts = t.column("timestamp").to_numpy().copy()
    ts[5], ts[6] = ts[6], ts[5]
    pq.write_table(t.set_column(t.column_names.index("timestamp"), "timestamp", pa.array(ts)), data)
    with pytest.raises(ImportFormatError, match=r"file-000.parquet.*not strictly increasing"):
        import_lerobot_all(fx["root"], tmp_path / "b", state_map=smap, quat_order="xyzw")
    assert not (tmp_path / "b").exists()
    # a from_timestamp that does not match the video: no frame at the asked time
    fx2 = more.robot_dataset(long_source, tmp_path / "ds2", episodes=2)
    ep = fx2["root"] / "meta/episodes/chunk-000/file-000.parquet"
    e = pq.read_table(ep).to_pylist()
    e[1]["videos/observation.images.front/from_timestamp"] += 0.01
    pq.write_table(pa.Table.from_pylist(e), ep)
    with pytest.raises(ImportFormatError, match=r"file-000.mp4.*no frame at"):
        import_lerobot(fx2["root"], tmp_path / "c", episode=1, state_map=smap, quat_order="xyzw")
    # not a video at all
    (fx2["root"] / "videos/observation.images.front/chunk-000/file-000.mp4").write_bytes(b"\0" * 4000)
    with pytest.raises(ImportFormatError, match="file-000.mp4.*(not a readable video|codec)"):
        import_lerobot(fx2["root"], tmp_path / "d", episode=0, state_map=smap, quat_order="xyzw")
    (fx2["root"] / "meta/info.json").write_text((fx2["root"] / "meta/info.json").read_text().replace('"v3.0"', '"v2.1"'))
    with pytest.raises(ImportFormatError, match="info.json.*v2.1.*only LeRobot v3"):
        import_lerobot(fx2["root"], tmp_path / "e", state_map=smap)
    assert not any((tmp_path / n).exists() for n in "acde")


def _bad_quat(root: Path, out: Path) -> None:
    """A pose column whose quaternion is not of unit norm (e.g. a scaled or mis-mapped slice) is refused."""
    data = root / "data/chunk-000/file-000.parquet"
    t = pq.read_table(data)
    pose = np.asarray(t.column("observation.pose").combine_chunks().flatten()).reshape(-1, 7).copy()
    pose[3, 3:] *= 1.5
    col = pa.FixedSizeListArray.from_arrays(pa.array(pose.ravel().astype(np.float32)), 7)
    pq.write_table(t.set_column(t.column_names.index("observation.pose"), "observation.pose", col), data)
    import_lerobot(root, out, state_map=parse_state_map(["head_pose=observation.pose"]), quat_order="xyzw")


# ---------------------------------------------------------------- Aria MPS hands


R_DC = R.from_euler("xyz", [0.3, -0.1, 0.05])  # the same T_device_rgb build.aria_mps writes
T_DC = np.array([0.05, 0.01, -0.02])


@pytest.mark.parametrize("landmarks", [True, False])
def test_aria_hands(source, tmp_path, landmarks):
    fx = build.aria_mps(source, tmp_path / "aria")
    hx = more.aria_hands(source, fx["mps"], fx["start_us"], R_DC, T_DC, landmarks=landmarks, lost={"left": [3, 4, 5]})
    out = import_aria(fx["mp4"], tmp_path / "s", fx["mps"], video_start_us=fx["start_us"])
    s = open_session(out)
    assert s.meta["streams"]["hands"]["clock"] == "tracker" == s.meta["streams"]["head_pose"]["clock"]
    assert s.meta["rig"]["hands_keypoints"] == ("landmarks" if landmarks else "wrist_only")
    a = s.arrays("hands")
    o = open_session(source).arrays("hands")
    for side in ("left", "right"):
        m, mo = a["side"] == side, o["side"] == side
        keep = np.setdiff1d(np.arange(mo.sum()), hx["lost"].get(side, []))  # untracked rows are gaps, not zeros
        assert np.all(np.abs(a["t_ns"][m] - o["t_ns"][mo][keep]) <= 500)  # MPS stamps are whole µs
        kp = o["keypoints"][mo][keep]
        assert np.allclose(a["keypoints"][m][:, 0], kp[:, 0], atol=1e-6)  # wrist back in the world frame
        if landmarks:
            others = [i for i in range(21) if i != 1]  # thumb CMC (1) is filled, not measured
            assert np.allclose(a["keypoints"][m][:, others], kp[:, others], atol=1e-6)
            cmc = a["keypoints"][m][:, 1]
            assert np.allclose(cmc, 0.5 * (kp[:, 0] + kp[:, 2]), atol=1e-6)
        else:
            assert np.allclose(a["keypoints"][m], a["keypoints"][m][:, :1], atol=1e-12)  # unknown fingers = wrist
        q = np.c_[a["wrist_qw"][m], a["wrist_qx"][m], a["wrist_qy"][m], a["wrist_qz"][m]]
        qo = np.c_[o["wrist_qw"][mo], o["wrist_qx"][mo], o["wrist_qy"][mo], o["wrist_qz"][mo]][keep]
        err = np.degrees((R.from_quat(q, scalar_first=True).inv() * R.from_quat(qo, scalar_first=True)).magnitude())
        assert np.max(err) < 5.0  # rebuilt in our convention from landmarks / palm normal
    fits = clock_fits(out, tmp_path / "sync")
    assert abs(fits["tracker"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_aria_versioned_hand_files_and_another_recordings_landmarks(source, tmp_path):
    """The layout of a real MPS folder (tests/test_real_aria.py): ``trajectory/`` instead of ``slam/``,
    ``*_v2.csv`` hand files, and landmark files of another recording beside them, which are skipped."""
    import shutil

    fx = build.aria_mps(source, tmp_path / "aria")
    more.aria_hands(source, fx["mps"], fx["start_us"], R_DC, T_DC, landmarks=False)
    mps = fx["mps"]
    (mps / "slam").rename(mps / "trajectory")
    (mps / "hand_tracking" / "wrist_and_palm_poses.csv").rename(mps / "hand_tracking" / "wrist_and_palm_poses_v2.csv")
    other = tmp_path / "other"
    more.aria_hands(source, other, fx["start_us"] + 3_600_000_000, R_DC, T_DC, landmarks=True)  # an hour later
    shutil.copy(other / "hand_tracking" / "hand_tracking_results.csv", mps / "hand_tracking" / "hand_tracking_results_v2.csv")
    s = open_session(import_aria(fx["mp4"], tmp_path / "s", mps, video_start_us=fx["start_us"]))
    assert s.meta["rig"]["hands_keypoints"] == "wrist_only"
    assert s.meta["provenance"]["hands"].endswith("wrist_and_palm_poses_v2.csv")
    assert "skipped hand_tracking_results_v2.csv" in s.meta["rig"]["hands_filled"]
    assert s.meta["provenance"]["trajectory"].endswith("trajectory/closed_loop_trajectory.csv")


def test_aria_hands_bad_inputs(source, tmp_path):
    fx = build.aria_mps(source, tmp_path / "aria")
    hx = more.aria_hands(source, fx["mps"], fx["start_us"], R_DC, T_DC, landmarks=True)
    text = hx["path"].read_text()
    hx["path"].write_text(text.replace("tx_right_landmark_7_device", "tx_right_lm_7"))
    with pytest.raises(ImportFormatError, match=r"hand_tracking_results.csv.*tx_right_landmark_7_device"):
        import_aria(fx["mp4"], tmp_path / "a", fx["mps"], video_start_us=fx["start_us"])
    lines = text.splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    hx["path"].write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match=r"hand_tracking_results.csv.*not strictly increasing"):
        import_aria(fx["mp4"], tmp_path / "b", fx["mps"], video_start_us=fx["start_us"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------- phone Sensor Logger


@pytest.mark.parametrize("form", ["csv", "zip"])
def test_sensor_logger_import_and_sync(source, tmp_path, form):
    mp4 = tmp_path / "phone.mp4"
    build.copy_video(source, mp4, 30.0)
    fx = more.sensor_logger(source, tmp_path / "log", zipped=form == "zip")
    out = import_camera(mp4, tmp_path / "s", telemetry=fx["zip"] if form == "zip" else fx["gyro_csv"], hfov_deg=70.0)
    s = open_session(out)
    assert s.meta["rig"]["camera_name"] == "Sensor Logger"
    assert s.meta["provenance"]["sensor_logger"]["first_gyro_epoch_ns"] == fx["epoch_ns"]
    a = s.arrays("imu")
    i = np.searchsorted(fx["t_ns"], a["t_ns"] - 1000)
    assert np.all(np.abs(a["t_ns"] - fx["t_ns"][i]) < 1000)  # ns since the first gyro sample (f64 epoch → 256 ns steps)
    assert np.allclose(np.c_[a["gx"], a["gy"], a["gz"]], fx["gyro"][i], atol=1e-8)
    # accelerometer at half the rate, starting later: interpolated at gyro times, not paired by index
    assert np.max(np.abs(np.c_[a["ax"], a["ay"], a["az"]] - fx["accel"][i])) < 0.1
    assert a["t_ns"][0] >= fx["t_ns"][fx["accel_idx"][0]] - 1000  # gyro rows before the first accel sample are dropped
    fits = clock_fits(out, tmp_path / "sync")
    assert fits["imu"]["verdict"] == "ok"
    assert abs(fits["imu"]["offset_ms"] - fx["expected_offset_ms"]) < QUARTER_FRAME_MS


def test_sensor_logger_bad_inputs(source, tmp_path):
    mp4 = tmp_path / "phone.mp4"
    build.copy_video(source, mp4, 30.0)
    fx = more.sensor_logger(source, tmp_path / "log")
    fx["accel_csv"].unlink()
    with pytest.raises(ImportFormatError, match="Accelerometer.csv.*record the accelerometer"):
        import_camera(mp4, tmp_path / "a", telemetry=fx["gyro_csv"])
    fx = more.sensor_logger(source, tmp_path / "log2")
    lines = fx["gyro_csv"].read_text().splitlines()
    lines[20], lines[21] = lines[21], lines[20]
    fx["gyro_csv"].write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match="Gyroscope.csv.*not strictly increasing"):
        import_camera(mp4, tmp_path / "b", telemetry=fx["gyro_csv"])
    fx = more.sensor_logger(source, tmp_path / "log3")
    g = fx["gyro_csv"].read_text().splitlines()
    head, rows = g[0], [r.split(",") for r in g[1:]]
    fx["gyro_csv"].write_text("\n".join([head] + [",".join(r[:2] + [str(float(v) * 57.3) for v in r[2:]]) for r in rows]) + "\n")
    with pytest.raises(ImportFormatError, match="Gyroscope.csv.*deg/s"):  # deg/s written where rad/s belongs
        import_camera(mp4, tmp_path / "c", telemetry=fx["gyro_csv"])
    assert not any((tmp_path / n).exists() for n in "abc")


# ---------------------------------------------------------------- CLI


def test_cli_lerobot(source, tmp_path):
    import typer

    from egoworld.capture.importers.cli import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:
        pass

    store = more.egoworld_store([source], tmp_path / "data")
    r = CliRunner().invoke(app, ["import", "lerobot", str(store), "--all-episodes", "--out", str(tmp_path / "out"),
                                 "--consent", "commercial"])
    assert r.exit_code == 0, r.output
    s = open_session(tmp_path / "out" / "episodes_ep000000")
    assert s.meta["source"] == "lerobot" and s.consent["scopes"] == ["research", "commercial"]
    r = CliRunner().invoke(app, ["import", "lerobot", str(store), "--out", str(tmp_path / "x"), "--camera-key", "nope"])
    assert r.exit_code == 2 and "info.json" in r.output and "no video feature 'nope'" in r.output
