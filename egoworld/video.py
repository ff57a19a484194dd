"""H.264 video with per-frame presentation timestamps, via PyAV; and the frame a model sees.

The PTS is the camera clock: a dropped frame is a gap in PTS, never a re-timed frame. Encoding is
single-threaded, and the heap filled from the first writer on (``egoworld.determinism``: x264 reads memory
it never wrote), so that the same frames always give the same bytes; reading video leaves the heap alone. ``to_model_frame`` scales a
live frame to a model's image size with the same filter the loader scales video with.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from egoworld._atomic import atomic_path
from egoworld.determinism import fill_heap

TIME_BASE = Fraction(1, 90000)  # the MPEG clock; 30 fps → 3000 ticks per frame


class VideoError(ValueError):
    """A video file that cannot be read or written as asked; the message names the file."""


def ns_to_pts(t_ns: int) -> int:
    return int(round(t_ns * TIME_BASE.denominator / (TIME_BASE.numerator * 1_000_000_000)))


def pts_to_ns(pts: int, time_base: Fraction) -> int:
    return int(round(pts * time_base.numerator * 1_000_000_000 / time_base.denominator))


class VideoWriter:
    """Write RGB frames with explicit timestamps (ns on the camera clock) to an H.264 mp4, atomically."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 18) -> None:
        fill_heap()  # before the encoder allocates anything it will read unwritten (egoworld.determinism)
        self.path = Path(path)
        self._ctx = atomic_path(self.path, ".mp4")
        self._tmp = self._ctx.__enter__()
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = TIME_BASE
        self._stream.codec_context.time_base = TIME_BASE
        self._stream.thread_count = 1
        self._stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "bframes": "0"}
        self._last_pts = -1

    def write(self, rgb: np.ndarray, t_ns: int) -> None:
        pts = ns_to_pts(t_ns)
        if pts <= self._last_pts:
            raise VideoError(f"{self.path}: frame timestamps must increase ({t_ns} ns after pts {self._last_pts})")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self, ok: bool = True) -> None:
        try:
            if ok:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        finally:
            if ok:
                self._ctx.__exit__(None, None, None)
            else:
                self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def write_video(path: str | Path, frames: Iterable[np.ndarray], t_ns: Iterable[int], fps: float) -> None:
    frames = iter(frames)
    first = next(frames)
    ts = iter(t_ns)
    with VideoWriter(path, first.shape[1], first.shape[0], fps) as w:
        w.write(first, next(ts))
        for f in frames:
            w.write(f, next(ts))


def _open(path: Path) -> "av.container.InputContainer":
    if not path.exists():
        raise VideoError(f"{path}: video file is missing")
    try:
        c = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{path}: not a readable video ({e})") from e
    if not c.streams.video:
        c.close()
        raise VideoError(f"{path}: contains no video stream")
    return c


def probe(path: str | Path) -> dict:
    """Codec, size, frame count and PTS (ns) of every frame, from the container only (no decoding)."""
    path = Path(path)
    c = _open(path)
    try:
        s = c.streams.video[0]
        raw = []
        try:
            for packet in c.demux(s):
                if packet.pts is not None:
                    raw.append(packet.pts)
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: video stream is corrupt ({e})") from e
        # A stream's packets share its time base: read it once, not a Fraction per packet.
        tb = s.time_base
        pts = sorted(pts_to_ns(p, tb) for p in raw)
        return {
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "frames": len(pts),
            "pts_ns": np.asarray(pts, dtype=np.int64),
            "average_rate": float(s.average_rate) if s.average_rate else None,
        }
    finally:
        c.close()


def iter_frames(path: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """Decode every frame: yields (pts_ns, rgb uint8 HxWx3) in presentation order."""
    path = Path(path)
    c = _open(path)
    try:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        try:
            for frame in c.decode(s):
                yield pts_to_ns(frame.pts, frame.time_base), frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: video stream is corrupt ({e})") from e
    finally:
        c.close()


def read_video(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames (N, H, W, 3) uint8 and their PTS in ns (N,)."""
    pts, frames = [], []
    for t, f in iter_frames(path):
        pts.append(t)
        frames.append(f)
    if not frames:
        raise VideoError(f"{path}: video has no decodable frames")
    return np.stack(frames), np.asarray(pts, dtype=np.int64)


def to_model_frame(image: np.ndarray, size: int) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 as a world model of image size ``size`` sees it: (size, size, 3) uint8.

    Every live frame goes through here on its way into a model (the planner's camera, the filtered
    simulator, the counterfactual's replay), so they all see what training saw: the loader scales
    video with an area filter (swscale AREA), and so does this — each output pixel is the mean of the
    input area it covers, rounded half to even. A frame already at ``size`` is returned as it is.
    """
    image = np.asarray(image)
    if image.shape[:2] == (size, size):
        return image
    import cv2

    mean = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.rint(mean).clip(0, 255).astype(np.uint8)
