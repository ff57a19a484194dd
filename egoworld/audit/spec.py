"""The capture standard: a spec file (YAML or JSON) and the per-session verdicts it gives.

A spec says what a capture must meet to be used (fps, resolution, FOV, camera model, exposure,
dropped frames, blur) and what sync must reach (drift, residual, verdict). ``load_spec`` checks
every key and type up front, so a malformed spec fails with the file and the key named, before
anything is judged or written. ``specs/default.yaml`` is the default.

The episode store keeps what was measured (rig, capture metrics, sync figures), never a verdict:
every verdict is given here, when the store is read, so a changed spec needs no rebuild.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SPEC = Path(__file__).with_name("specs") / "default.yaml"


class SpecError(ValueError):
    """A spec file that cannot be used; names the file and the key."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


_NUM = (int, float)
# key path → (type check, description)
_SCHEMA: dict[tuple[str, ...], tuple[Any, str]] = {
    ("fps", "nominal"): (_NUM, "a positive number"),
    ("fps", "tolerance"): (_NUM, "a number ≥ 0"),
    ("resolution", "min_width"): (int, "an integer"),
    ("resolution", "min_height"): (int, "an integer"),
    ("fov_deg", "h"): ("range", "[min, max] in degrees"),
    ("fov_deg", "v"): ("range", "[min, max] in degrees"),
    ("camera_models",): ("strlist", "a list of camera model names"),
    ("brightness", "min"): (_NUM, "a number 0–255"),
    ("brightness", "max"): (_NUM, "a number 0–255"),
    ("max_dropped_frame_rate",): (_NUM, "a fraction 0–1"),
    ("min_sharpness",): (_NUM, "a number ≥ 0"),
    ("sync", "max_abs_drift_ppm"): (_NUM, "a number ≥ 0"),
    ("sync", "max_residual_ms"): (_NUM, "a number ≥ 0"),
    ("sync", "accept_verdicts"): ("strlist", "a list of sync verdicts (ok, suspect)"),
}


def _get(d: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            raise KeyError(".".join(keys))
        d = d[k]
    return d


def load_spec(path: str | Path | None = None) -> dict:
    """Read and validate a spec (None → the default). Raises SpecError naming the file and key."""
    path = Path(path) if path is not None else DEFAULT_SPEC
    if not path.exists():
        raise SpecError(path, "spec file is missing")
    text = path.read_text()
    try:
        spec = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise SpecError(path, f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} ({e})") from e
    if not isinstance(spec, dict):
        raise SpecError(path, "must hold a mapping of settings (see egoworld/audit/specs/default.yaml)")
    for keys, (kind, desc) in _SCHEMA.items():
        name = ".".join(keys)
        try:
            v = _get(spec, keys)
        except KeyError:
            raise SpecError(path, f"missing key '{name}' ({desc})") from None
        ok = True
        if kind == "range":
            ok = (isinstance(v, list) and len(v) == 2 and all(isinstance(x, _NUM) and not isinstance(x, bool) for x in v)
                  and v[0] <= v[1])
        elif kind == "strlist":
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        else:
            ok = isinstance(v, kind) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        if not ok:
            raise SpecError(path, f"key '{name}' must be {desc}, got {v!r}")
    if spec["fps"]["nominal"] <= 0:
        raise SpecError(path, "key 'fps.nominal' must be a positive number")
    if spec["brightness"]["min"] > spec["brightness"]["max"]:
        raise SpecError(path, "brightness.min is above brightness.max")
    if not 0 <= spec["max_dropped_frame_rate"] <= 1:
        raise SpecError(path, "key 'max_dropped_frame_rate' must be a fraction 0–1")
    spec.setdefault("name", path.stem)
    spec["_path"] = str(path)
    return spec


def evaluate_capture(spec: dict, session: dict) -> dict:
    """Capture-standard verdict for one session record (meta/egoworld/sessions.json entry).

    Returns ``{"verdict": "pass"|"fail", "reasons": [...], "checks": {name: {value, ok}}}``; every
    failed check gives a reason with the measured value and the limit.
    """
    rig, cap = session.get("rig") or {}, session.get("capture") or {}
    checks: dict[str, dict] = {}
    reasons: list[str] = []

    def check(name: str, value: Any, ok: bool, why: str) -> None:
        checks[name] = {"value": value, "ok": bool(ok)}
        if not ok:
            reasons.append(why)

    f = spec["fps"]
    nominal, tol = float(f["nominal"]), float(f["tolerance"])
    declared = rig.get("fps")
    check("fps_declared", declared, declared is not None and abs(float(declared) - nominal) <= tol,
          f"wrong frame rate: rig records at {declared} fps, the standard is {nominal:g} ± {tol:g}")
    measured = cap.get("measured_fps")
    if measured is not None:
        check("fps_measured", measured, abs(float(measured) - nominal) <= tol,
              f"wrong frame rate: frames arrive at {float(measured):.2f} fps, the standard is {nominal:g} ± {tol:g}")
    w, h = rig.get("width"), rig.get("height")
    r = spec["resolution"]
    check("resolution", [w, h], w is not None and h is not None and w >= r["min_width"] and h >= r["min_height"],
          f"resolution {w}×{h} is below the minimum {r['min_width']}×{r['min_height']}")
    fov = rig.get("fov_deg") or {}
    assumed = rig.get("fov_assumed") is True
    notes: list[str] = []
    for axis in ("h", "v"):
        lo, hi = spec["fov_deg"][axis]
        v = fov.get(axis)
        name = "horizontal" if axis == "h" else "vertical"
        if assumed and v is not None:  # an importer's guess cannot fail (or pass) the standard: say so instead
            checks[f"fov_{axis}"] = {"value": v, "ok": None, "assumed": True}
            notes.append(f"{name} FOV {float(v):.1f}° is assumed, not measured ({rig.get('intrinsics_source') or 'no calibration'})"
                         + ("" if lo <= float(v) <= hi else f"; it would be outside [{lo}, {hi}]°"))
            continue
        check(f"fov_{axis}", v, v is not None and lo <= float(v) <= hi,
              f"{name} FOV {v if v is None else round(float(v), 1)}° outside [{lo}, {hi}]°")
    model = rig.get("camera_model")
    check("camera_model", model, model in spec["camera_models"],
          f"camera model {model!r} not in the standard's {spec['camera_models']}")
    b = cap.get("brightness_mean")
    if b is None:
        check("brightness", None, False, "brightness not measured (video unreadable?)")
    else:
        lo, hi = spec["brightness"]["min"], spec["brightness"]["max"]
        check("brightness", b, lo <= b <= hi,
              f"{'too dark' if b < lo else 'over-exposed'}: mean brightness {b:.1f} outside [{lo}, {hi}]")
    d = cap.get("dropped_rate")
    if d is not None:
        check("dropped_frames", d, d <= spec["max_dropped_frame_rate"],
              f"dropped frames {100 * d:.2f}% above the maximum {100 * spec['max_dropped_frame_rate']:.2f}%")
    s = cap.get("sharpness_lapvar")
    if s is not None:
        check("sharpness", s, s >= spec["min_sharpness"],
              f"blurred: sharpness (variance of the Laplacian) {s:.1f} below {spec['min_sharpness']}")
    if cap.get("error"):
        check("readable", False, False, f"cannot measure: {cap['error']}")
    return {"verdict": "pass" if not reasons else "fail", "reasons": reasons, "checks": checks, "notes": notes}


def evaluate_sync(spec: dict, session: dict) -> dict:
    """Sync verdict against the spec: the sync verdict itself, drift and residual thresholds."""
    s = spec["sync"]
    sync = session.get("sync") or {}
    reasons: list[str] = []
    verdict = sync.get("verdict", "failed")
    if verdict not in s["accept_verdicts"]:
        reasons.append(f"sync verdict '{verdict}': {sync.get('reason', '')}".rstrip(": "))
    sigma = sync.get("max_sigma_ms")
    limit = s.get("max_timing_uncertainty_ms")
    if verdict != "failed" and limit is not None and sigma is not None and sigma > limit:
        reasons.append(f"sync timing uncertainty {sigma:.2f} ms above {limit:g} ms")
    drift = sync.get("max_abs_drift_ppm")
    if drift is not None and drift > s["max_abs_drift_ppm"]:
        reasons.append(f"heavy clock drift: |drift| {drift:.0f} ppm above {s['max_abs_drift_ppm']:g} ppm")
    for name, c in (sync.get("clocks") or {}).items():
        dp = c.get("drift_ppm")
        if dp is not None and abs(dp) > s["max_abs_drift_ppm"] and drift is None:
            reasons.append(f"heavy clock drift on {name}: {dp:.0f} ppm")
    res = sync.get("max_residual_ms")
    if res is not None and res > s["max_residual_ms"]:
        reasons.append(f"sync residual {res:.2f} ms above {s['max_residual_ms']:g} ms")
    return {"verdict": "ok" if not reasons else "fail", "reasons": reasons, "sync_verdict": verdict}


def session_verdicts(spec: dict, session: dict) -> dict:
    """One session record's verdicts under ``spec``, flat (the catalog's and a run's lineage columns).

    Judged when read, from the measurements the store keeps: a changed spec changes them without a
    rebuild. ``sync_spec_verdict`` is sync against the spec's thresholds (``sync_verdict``, beside
    it in the store, is sync's own judgement of its estimate).
    """
    c, y = evaluate_capture(spec, session), evaluate_sync(spec, session)
    return {"capture_verdict": c["verdict"], "capture_reasons": "; ".join(c["reasons"]),
            "sync_spec_verdict": y["verdict"], "sync_spec_reasons": "; ".join(y["reasons"])}
