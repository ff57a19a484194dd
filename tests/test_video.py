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


def test_model_frames_are_area_averages_as_the_loader_scales_video():
    import av

    from egoworld.video import to_model_frame

    rng = np.random.default_rng(0)
    for size in (128, 96, 80):  # the rig's sizes around a 64² model: whole blocks of 2, and 1.5 or 1.25 pixels
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        small = to_model_frame(img, 64)
        assert small.shape == (64, 64, 3) and small.dtype == np.uint8
        sws = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(width=64, height=64, format="rgb24",
                                                                        interpolation="AREA").to_ndarray()
        assert np.abs(small.astype(int) - sws).max() <= 1  # what training saw, up to rounding
    img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for size in (64, 32):  # whole blocks: the block mean, rounded half to even (ties are common in 2×2 blocks)
        k = 128 // size
        mean = img.reshape(size, k, size, k, 3).mean((1, 3))
        np.testing.assert_array_equal(to_model_frame(img, size), np.rint(mean).astype(np.uint8))
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert to_model_frame(img, 32) is img  # already the model's size: untouched
