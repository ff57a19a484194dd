"""Project Aria's real files (../shared/real/aria, projectaria_tools test data): each MPS file and the VRS recording.

The MPS sample's own video is not available, so its files are read and checked on their own
(against projectaria-tools' readers where it is installed); the 0.4 s Everyday Activities VRS is
imported with its MPS folder into a session that ``egoworld inspect``, ``sync`` and the episode
store accept. Skipped when the files (or projectaria-tools, for VRS) are not here.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from real_data import real_file
from typer.testing import CliRunner

from egoworld.capture.importers.aria import (
    MPS_LANDMARK_FOR_OURS,
    _mps_head_pose,
    import_aria,
    read_hands,
    read_mps_hands,
    rgb_calibration,
)
from egoworld.capture.importers.common import ImportFormatError
from egoworld.session import open_session

HAND_FILES = {"hand_tracking_results_v1.csv": (8, 3, 3), "hand_tracking_results_v2.csv": (8, 3, 3),
              "wrist_and_palm_poses.csv": (122, 0, 6), "wrist_and_palm_poses_v2.csv": (122, 0, 6)}


def _cli(args: list, code: int = 0) -> str:
    from egoworld.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r.output


def test_mps_trajectory_and_online_calibration() -> None:
    mps = real_file("aria/mps_sample/trajectory/closed_loop_trajectory.csv").parents[1]
    hp = _mps_head_pose(mps, None)
    assert len(hp["t_us"]) == 11517 and abs((hp["t_us"][-1] - hp["t_us"][0]) * 1e-6 - 11.4) < 0.05
    assert abs(np.sum(np.linalg.norm(np.diff(hp["p_wd"], axis=0), axis=1)) - 7.67) < 0.05  # metres walked
    assert np.allclose(np.linalg.norm(hp["q_wc"], axis=1), 1.0)
    cal = rgb_calibration(mps / "trajectory" / "online_calibration.jsonl")
    T = cal["T_device_camera"]
    assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9) and len(cal["projection"]["Params"]) >= 3


@pytest.mark.filterwarnings("ignore:WristAndPalmPoses")  # projectaria-tools' own reader, deprecated there
@pytest.mark.parametrize("name", sorted(HAND_FILES))
def test_mps_hand_file(name: str) -> None:
    path = real_file(f"aria/mps_sample/hand_tracking/{name}")
    h = read_mps_hands(path)
    rows, left, right = HAND_FILES[name]
    assert len(h["t_us"]) == rows
    assert int((h["sides"]["left"]["conf"] > 0).sum()) == left and int((h["sides"]["right"]["conf"] > 0).sum()) == right
    try:
        from projectaria_tools.core import mps
    except ImportError:
        return
    seen = h["sides"]["right"]["conf"] > 0
    i = int(np.flatnonzero(seen)[0])
    if h["kind"] == "landmarks":  # the same 21 points as projectaria-tools reads, landmark 5 the wrist
        theirs = mps.hand_tracking.read_hand_tracking_results(str(path))[i].right_hand
        assert np.allclose(h["sides"]["right"]["landmarks"][i], np.asarray(theirs.landmark_positions_device), atol=1e-6)
        assert np.allclose(h["sides"]["right"]["landmarks"][i][MPS_LANDMARK_FOR_OURS[0]],
                           theirs.transform_device_wrist.translation().ravel(), atol=1e-6)
    else:
        theirs = mps.hand_tracking.read_wrist_and_palm_poses(str(path))[i].right_hand
        assert np.allclose(h["sides"]["right"]["wrist"][i], theirs.wrist_position_device, atol=1e-6)
        assert np.allclose(h["sides"]["right"]["palm"][i], theirs.palm_position_device, atol=1e-6)
        if h["sides"]["right"]["palm_normal"] is not None:
            assert np.allclose(h["sides"]["right"]["palm_normal"][i],
                               theirs.wrist_and_palm_normal_device.palm_normal_device, atol=1e-6)


def test_mps_hands_in_the_world_use_the_file_of_the_same_recording() -> None:
    mps = real_file("aria/mps_sample/trajectory/closed_loop_trajectory.csv").parents[1]
    hp = _mps_head_pose(mps, None)
    table, path, filled = read_hands(mps, hp["t_us"], hp["p_wd"], hp["q_wd"], hp["start_us"])
    # the landmark files are of another recording (their times lie outside the trajectory): skipped, said so
    assert path.name == "wrist_and_palm_poses_v2.csv" and "skipped hand_tracking_results_v2.csv" in filled
    assert table.num_rows == 6 and set(table.column("side").to_pylist()) == {"right"}
    q = np.c_[[table.column(f"wrist_{c}").to_numpy() for c in ("qw", "qx", "qy", "qz")]].T
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0)


def test_vrs_with_its_mps_passes_inspect_sync_and_the_store(tmp_path: Path) -> None:
    pytest.importorskip("projectaria_tools", reason="VRS needs projectaria-tools (pip install --no-deps projectaria-tools)")
    vrs = real_file("aria/aea_test/recording.vrs")
    data = tmp_path / "D"
    _cli(["import", "aria", vrs, "--mps", vrs.parent / "mps", "--out", data / "aea", "--consent", "research"])
    s = open_session(data / "aea")
    assert s.meta["streams"]["imu"]["clock"] == "camera" and abs(s.meta["streams"]["imu"]["rate_hz"] - 1000) < 5
    assert len(s.arrays("imu")["t_ns"]) == 400 and s.meta["rig"]["camera_model"] == "opencv_fisheye"
    R = np.asarray(s.meta["rig"]["imu"]["R_camera_imu"])
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-6) and "factory calibration" in s.meta["rig"]["imu"]["source"]
    assert "no trajectory" in s.meta["provenance"]["mps_used"]  # this recording's MPS has eye gaze only
    from egoworld.video import probe

    v = probe(s.video_path)
    assert len(v["pts_ns"]) == 8 and abs(s.fps - 20.0) < 0.01 and np.allclose(np.diff(v["pts_ns"]) * 1e-9, 0.05, atol=1e-3)
    assert "imu" in _cli(["inspect", data / "aea"])
    _cli(["sync", data])
    report = json.loads((data / "aligned" / s.id / "sync.json").read_text())
    assert report["verdict"] == "ok" and report["clocks"]["camera"]["reason"] == "same clock as the video"
    assert "wrote 1 episodes, 8 frames" in _cli(["episodes", data])


def test_vrs_with_the_mps_of_another_recording_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("projectaria_tools", reason="VRS needs projectaria-tools (pip install --no-deps projectaria-tools)")
    vrs = real_file("aria/aea_test/recording.vrs")
    mps = real_file("aria/mps_sample/trajectory/closed_loop_trajectory.csv").parents[1]
    with pytest.raises(ImportFormatError, match="not the same recording"):
        import_aria(vrs, tmp_path / "x", mps=mps)
    assert not (tmp_path / "x").exists()
