"""Sensor clocks that disagree, the way a real rig's do.

Each motion clock relates to the camera clock by ``t_stream = (1 + drift_ppm·1e-6)·t_video +
offset``; a sensor ticks regularly on its *own* clock, stamps each sample with that clock plus
jitter, and sometimes drops a sample. The camera clock is the sim's true time here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClockSpec:
    name: str
    offset_ms: float
    drift_ppm: float
    jitter_ms: float
    drop_rate: float

    def to_json(self) -> dict:
        return asdict(self)


def random_clock(name: str, rng: np.random.Generator, offset_ms: float | None = None, drift_ppm: float | None = None,
                 jitter_ms: float = 0.3, drop_rate: float = 0.004) -> ClockSpec:
    """A clock with the given offset/drift, or drawn uniformly from ±500 ms and ±1000 ppm."""
    off = float(rng.uniform(-500, 500)) if offset_ms is None else float(offset_ms)
    drift = float(rng.uniform(-1000, 1000)) if drift_ppm is None else float(drift_ppm)
    return ClockSpec(name, round(off, 6), round(drift, 6), jitter_ms, drop_rate)


@dataclass
class Sampling:
    """Where a stream's samples fall: true (camera-clock) seconds, stamps on its clock, what was dropped."""

    t_true: np.ndarray  # (n,) seconds on the camera clock, for the kept samples
    t_ns: np.ndarray  # (n,) int64 stamps on the stream's clock
    dropped: list[int]  # tick numbers that were never delivered


def sample_clock(clock: ClockSpec, rate_hz: float, t_end: float, rng: np.random.Generator, jitter_ms: float | None = None) -> Sampling:
    """Ticks every 1/rate on the stream's clock, covering camera time [0, t_end]."""
    scale = 1.0 + clock.drift_ppm * 1e-6
    off = clock.offset_ms * 1e-3
    s0, s1 = off, scale * t_end + off  # stream-clock span of the camera interval
    k = np.arange(int(np.ceil(s0 * rate_hz)), int(np.floor(s1 * rate_hz)) + 1)
    t_stream = k / rate_hz
    t_true = (t_stream - off) / scale
    jit = (clock.jitter_ms if jitter_ms is None else jitter_ms) * 1e-3
    noise = np.clip(rng.normal(0.0, jit, len(k)), -0.4 / rate_hz, 0.4 / rate_hz) if jit > 0 else np.zeros(len(k))
    keep = rng.random(len(k)) >= clock.drop_rate
    keep[[0, -1]] = True
    stamps = np.round((t_stream + noise) * 1e9).astype(np.int64)
    return Sampling(t_true[keep], stamps[keep], [int(i) for i in np.flatnonzero(~keep)])
