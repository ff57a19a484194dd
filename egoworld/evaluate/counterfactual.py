"""Counterfactual sensitivity: does the model's prediction change the way the world does?

From one recorded state, the simulator and the model each play two action sequences: A (what
the person did) and B (A with the head turned and the right hand pushed forward). We compare the
*differences* D_sim = sim(A) − sim(B) and D_model = model(A) − model(B), frame by frame:
  * cosine(D_model, D_sim): 1 when the model moves the right pixels the right way;
  * gain |D_model| / |D_sim|: 1 when it moves them by the right amount; ~0 for a model that
    ignores the action (exactly 0 for the action-blind baseline).
For the synthetic square world the "simulator" is its own renderer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoworld import runs
from egoworld.evaluate.openloop import eval_indices
from egoworld.model import WorldModel
from egoworld.train.data import collate
from egoworld.video import to_model_frame

HEAD_YAW, RIGHT_WRIST_Z = 4, 15  # control columns (egoworld.actions): head ry; right wrist tz (camera frame)


def _stats(d_model: torch.Tensor, d_sim: torch.Tensor) -> dict[str, float]:
    """Per-clip cosine and gain of (N, H, 3, S, S) differences, averaged over clips."""
    m, s = d_model.flatten(1), d_sim.flatten(1)
    cos = (m * s).sum(1) / (m.norm(dim=1) * s.norm(dim=1)).clamp_min(1e-12)
    gain = m.norm(dim=1) / s.norm(dim=1).clamp_min(1e-12)
    return {"cosine": round(float(cos.mean()), 4), "gain": round(float(gain.mean()), 4),
            "model_abs_diff": round(float(d_model.abs().mean()), 5), "sim_abs_diff": round(float(d_sim.abs().mean()), 5),
            "n_clips": int(len(m))}


def _alternative_square(a: torch.Tensor) -> torch.Tensor:
    b = a.clone()
    b[..., :2] = -b[..., :2]  # move the other way
    return b


@torch.no_grad()
def synthetic_counterfactual(models: dict[str, WorldModel], ds: Any, context: int, horizon: int,
                             max_clips: int = 16) -> dict[str, dict[str, float]]:
    """Counterfactual sensitivity of each model in the square world (``SyntheticClips``, T ≥ C + H)."""
    from egoworld.train.synthetic import render, step_positions

    C, H = context, horizon
    idx = eval_indices(len(ds), max_clips)
    b = collate(ds, idx)
    act_a = b["action"][:, C - 1:C - 1 + H]
    act_b = _alternative_square(act_a)
    sims = []
    for j, i in enumerate(idx):
        start = ds.start_position(i, C - 1)
        frames = [render(step_positions(start, a.numpy(), ds.speed, ds.square), ds.size, ds.place_of(i), ds.square)
                  for a in (act_a[j], act_b[j])]
        sims.append(torch.from_numpy(frames[0]).float() / 255 - torch.from_numpy(frames[1]).float() / 255)
    d_sim = torch.stack(sims)
    out = {}
    ctx_act = b["action"][:, :C - 1]
    for name, m in models.items():
        pa, _ = m.open_loop(b["image"][:, :C], torch.cat([ctx_act, act_a], 1), state=b["state"][:, :C])
        pb, _ = m.open_loop(b["image"][:, :C], torch.cat([ctx_act, act_b], 1), state=b["state"][:, :C])
        out[name] = _stats(pa - pb, d_sim)
    return out


def _model_frames(frames: list[np.ndarray], size: int) -> torch.Tensor:
    """Rendered frames (H, W, 3) uint8 → (N, 3, size, size) in [0, 1], as the model's frames."""
    small = np.stack([to_model_frame(f, size) for f in frames])
    return torch.from_numpy(small).permute(0, 3, 1, 2).float() / 255


def _replay_pair(ds: Any, sessions: dict[int, Any], i: int, context: int, horizon: int) -> dict[str, Any] | None:
    """Clip ``i``: context, and the simulator's frames for action sequences A (recorded) and B (altered).

    None when the clip's session has no replay or too few recorded controls after the context.
    """
    from egoworld.actions import clip_control, control_to_action
    from egoworld.capture.sim.replay import load_simulator, recorded_controls, recorded_states

    C, H = context, horizon
    ep, start = (int(x) for x in ds.windows()[i])
    session = sessions.get(ep)
    if session is None:
        return None
    k = start + C - 1
    controls = recorded_controls(session)
    if k + H > len(controls):
        return None
    hand_scale = json.loads((session / "truth" / "task.json").read_text()).get("hand_scale", 1.0)
    ca = controls[k:k + H]
    cb = ca.copy()
    cb[:, HEAD_YAW] += 0.04
    cb[:, RIGHT_WRIST_Z] += 0.02
    cb = clip_control(cb)
    sim, _ = load_simulator(session)
    state = recorded_states(session)[k]
    renders = []
    for seq in (ca, cb):
        sim.set_state(state)
        frames = []
        for c in seq:
            sim.step(c)
            frames.append(sim.render())
        renders.append(_model_frames(frames, ds.size))
    sim.close()
    item = ds[i]
    return {"sim_a": renders[0], "sim_b": renders[1], "context": item["image"][:C], "context_action": item["action"][:C - 1],
            "context_state": item["state"][:C],
            "action_a": torch.from_numpy(control_to_action(ca, hand_scale)).float(),
            "action_b": torch.from_numpy(control_to_action(cb, hand_scale)).float(),
            "session": str(session), "episode": ep, "start": start}


@torch.no_grad()
def sim_counterfactual(models: dict[str, WorldModel], ds: Any, sessions: dict[int, Any], context: int, horizon: int,
                       max_clips: int = 8) -> dict[str, dict[str, float]]:
    """Counterfactual sensitivity against the MuJoCo simulator, replayed from recorded states."""
    import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco renders)

    C, H = context, horizon
    windows = ds.windows()
    usable = [i for i in range(len(ds)) if int(windows[i][0]) in sessions]
    chosen = [usable[j] for j in eval_indices(len(usable), max_clips)] if usable else []
    pairs = [p for p in (_replay_pair(ds, sessions, i, C, H) for i in chosen) if p is not None]
    if not pairs:
        return {}
    d_sim = torch.stack([p["sim_a"] - p["sim_b"] for p in pairs])
    ctx, ctx_act = torch.stack([p["context"] for p in pairs]), torch.stack([p["context_action"] for p in pairs])
    ctx_state = torch.stack([p["context_state"] for p in pairs])
    act_a, act_b = torch.stack([p["action_a"] for p in pairs]), torch.stack([p["action_b"] for p in pairs])
    out = {}
    for name, m in models.items():
        pa, _ = m.open_loop(ctx, torch.cat([ctx_act, act_a], 1), state=ctx_state)
        pb, _ = m.open_loop(ctx, torch.cat([ctx_act, act_b], 1), state=ctx_state)
        out[name] = _stats(pa - pb, d_sim)
    return out


@torch.no_grad()
def counterfactual_frames(models: dict[str, WorldModel], ds: Any, sessions: dict[int, Any], context: int,
                          horizon: int) -> dict[str, Any] | None:
    """One start, two action sequences: uint8 frames (C+H, 3, S, S) of the simulator and of each model.

    Keys ``simulator/A``, ``simulator/B``, ``<model>/A``, ``<model>/B`` (the C context frames
    first, then the H frames each sequence produced), plus ``about``: the clip (session,
    episode, first frame), C, H and what B changes. The first held clip (in ``eval_indices``
    order) that replays is used; None when none does.
    """
    import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco renders)

    C, H = context, horizon
    windows = ds.windows()
    usable = [i for i in range(len(ds)) if int(windows[i][0]) in sessions]
    for j in eval_indices(len(usable), len(usable)):
        p = _replay_pair(ds, sessions, usable[j], C, H)
        if p is not None:
            break
    else:
        return None
    def to8(x: torch.Tensor) -> torch.Tensor:
        return (x * 255).round().clamp(0, 255).to(torch.uint8)

    ctx8 = to8(p["context"])
    out: dict[str, Any] = {"simulator/A": torch.cat([ctx8, to8(p["sim_a"])]),
                           "simulator/B": torch.cat([ctx8, to8(p["sim_b"])])}
    for name, m in models.items():
        for key in ("a", "b"):
            pred, _ = m.open_loop(p["context"][None], torch.cat([p["context_action"], p[f"action_{key}"]])[None],
                                  state=p["context_state"][None])
            out[f"{name}/{key.upper()}"] = torch.cat([ctx8, to8(pred[0])])
    out["about"] = {"session": p["session"], "episode": p["episode"], "start_frame": p["start"], "context": C, "horizon": H,
                    "A": "the recorded actions",
                    "B": "the recorded actions, the head turning 0.04 rad a frame more (yaw) and the right wrist moving 2 cm a frame further forward"}
    return out


def write_counterfactual_video(run: str | Path, data: str, path: str | Path, blind: str | Path | None = None,
                               horizon: int = 10, split: str = "heldout") -> dict[str, Any] | None:
    """The counterfactual as a video: rows A and B, columns simulator | model (| action-blind).

    Writes ``path`` (H.264) and returns ``about`` (which clip, C, H, what B changes, the columns);
    None when no clip of ``split`` (else val) replays in the simulator.
    """
    from egoworld.evaluate.report import write_video
    from egoworld.evaluate.truth import Targets
    from egoworld.train.data import open_clips

    model, cfg = runs.load_model(run)
    models = {"model": model}
    if blind is not None:
        models["action_blind"] = runs.load_model(blind)[0]
    C = cfg.context
    for name in (split, "val"):
        try:
            ds = open_clips(data, cfg, name, T=C + horizon)
        except (ValueError, KeyError):
            continue
        if len(ds) == 0 or not hasattr(ds, "store"):
            continue
        frames = counterfactual_frames(models, ds, Targets(ds).sessions, C, horizon)
        if frames is None:
            continue
        about = frames.pop("about")
        cols = {k: torch.cat([frames[f"{k}/A"], frames[f"{k}/B"]], dim=2) for k in ("simulator", *models)}
        write_video(cols, Path(path))
        about.update(split=name, columns=list(cols), rows=["A", "B"], file=Path(path).name)
        return about
    return None
