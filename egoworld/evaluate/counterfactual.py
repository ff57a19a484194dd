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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from egoworld.evaluate.openloop import eval_indices
from egoworld.model import WorldModel
from egoworld.train.data import collate

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
        pa, _ = m.open_loop(b["image"][:, :C], torch.cat([ctx_act, act_a], 1))
        pb, _ = m.open_loop(b["image"][:, :C], torch.cat([ctx_act, act_b], 1))
        out[name] = _stats(pa - pb, d_sim)
    return out


def _resize(frames: np.ndarray, size: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="area")


@torch.no_grad()
def sim_counterfactual(models: dict[str, WorldModel], ds: Any, sessions: dict[int, Any], context: int, horizon: int,
                       max_clips: int = 8) -> dict[str, dict[str, float]]:
    """Counterfactual sensitivity against the MuJoCo simulator, replayed from recorded states."""
    import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco renders)
    from egoworld.actions import clip_control, control_to_action
    from egoworld.capture.sim.replay import load_simulator, recorded_controls, recorded_states

    C, H = context, horizon
    windows = ds.windows()
    usable = [i for i in range(len(ds)) if int(windows[i][0]) in sessions]
    chosen = [usable[j] for j in eval_indices(len(usable), max_clips)] if usable else []
    d_sims, ctxs, ctx_acts, acts = [], [], [], {"a": [], "b": []}
    for i in chosen:
        ep, start = (int(x) for x in windows[i])
        session = sessions[ep]
        k = start + C - 1
        controls = recorded_controls(session)
        if k + H > len(controls):
            continue
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
            renders.append(_resize(np.stack(frames), ds.size))
        sim.close()
        d_sims.append(renders[0] - renders[1])
        item = ds[i]
        ctxs.append(item["image"][:C])
        ctx_acts.append(item["action"][:C - 1])
        acts["a"].append(torch.from_numpy(control_to_action(ca, hand_scale)).float())
        acts["b"].append(torch.from_numpy(control_to_action(cb, hand_scale)).float())
    if not d_sims:
        return {}
    d_sim, ctx, ctx_act = torch.stack(d_sims), torch.stack(ctxs), torch.stack(ctx_acts)
    out = {}
    for name, m in models.items():
        pa, _ = m.open_loop(ctx, torch.cat([ctx_act, torch.stack(acts["a"])], 1))
        pb, _ = m.open_loop(ctx, torch.cat([ctx_act, torch.stack(acts["b"])], 1))
        out[name] = _stats(pa - pb, d_sim)
    return out
