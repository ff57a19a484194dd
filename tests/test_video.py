"""Video keeps each frame's timestamp, including gaps from dropped frames."""
import numpy as np
import pytest

from egoworld.video import VideoError, probe, read_video, write_video


def test_pts_round_trip_with_gap(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(rng.random((32, 48, 3)) * 255).astype(np.uint8) for _ in range(10)]
    t = [int(i * 1e9 / 30) for i in range(11) if i != 4]  # frame 4 was dropped
    write_video(tmp_path / "v.mp4", frames, t, 30)
    got, pts = read_video(tmp_path / "v.mp4")
    assert got.shape == (10, 32, 48, 3)
    assert np.abs(pts - np.array(t)).max() <= 1  # ns (90 kHz MPEG clock)
    assert np.all(probe(tmp_path / "v.mp4")["pts_ns"] == pts)


def test_decreasing_timestamps_refused(tmp_path):
    with pytest.raises(VideoError, match="increase"):
        write_video(tmp_path / "v.mp4", [np.zeros((16, 16, 3), np.uint8)] * 2, [10, 5], 30)
    assert not (tmp_path / "v.mp4").exists()
    assert not list(tmp_path.iterdir())  # no temporary file left behind
