"""What a session holds, from its metadata and timestamps only (no video decoding)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from egoworld.session import Session, consent_status, open_session


def _rate(t_ns: np.ndarray) -> float:
    d = np.diff(t_ns)
    return float(1e9 / np.median(d)) if len(d) else float("nan")


def summarize(path: str | Path) -> dict:
    """A JSON-able summary: rig, streams with measured rates and spans, video gaps, clocks, consent."""
    s: Session = open_session(path)
    rig = s.meta["rig"]
    pts = s.frame_times_ns
    gaps = np.diff(pts) > 1.5e9 / s.fps
    streams = []
    for name in s.stream_names:
        t = s.table(name).column("t_ns").to_numpy()
        info = s.meta["streams"][name]
        if name == "hands":
            side = np.asarray(s.table(name).column("side").to_pylist())
            tt = t[side == "right"] if np.any(side == "right") else t
        else:
            tt = t
        streams.append({"name": name, "clock": info["clock"], "nominal_hz": info.get("rate_hz"), "rows": len(t),
                        "measured_hz": round(_rate(tt), 2), "first_s": t[0] / 1e9, "last_s": t[-1] / 1e9,
                        "span_s": (t[-1] - t[0]) / 1e9})
    return {
        "session_id": s.id, "path": str(s.path), "source": s.meta["source"], "duration_s": s.meta["duration_s"],
        "place": s.meta["place"].get("id"), "person": s.meta["person"].get("id"), "task": s.meta["task"].get("id"),
        "objects": [o.get("id") for o in s.meta["objects"]],
        "rig": {"fps": rig["fps"], "resolution": f"{rig['width']}x{rig['height']}", "camera_model": rig["camera_model"],
                "fov_deg": rig["fov_deg"], "intrinsics": rig["intrinsics"]},
        "video": {"codec": s.video["codec"], "frames": s.video["frames"], "measured_fps": round(_rate(pts), 3),
                  "span_s": (pts[-1] - pts[0]) / 1e9, "gaps": int(gaps.sum())},
        "streams": streams, "clocks": s.meta["clocks"],
        "consent": None if s.consent is None else {**s.consent, "research": consent_status(s.consent, "research")[1],
                                                   "commercial": consent_status(s.consent, "commercial")[1]},
        "has_truth": (s.path / "truth").is_dir(),
    }
