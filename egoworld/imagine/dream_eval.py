"""Policies in the dream and in the simulator: success, the dream-vs-real gap, and how well the model ranks policies.

The policy-evaluation use of a world model: before running a policy for real, ask the model how well
it will do. Every policy here runs from the same real starts in ``DreamEnv`` (its *dream return*:
the predicted change of task progress) and in ``FilteredSimEnv`` (its *real return*: the true change
of task progress, and whether the task succeeded). Over several policies — actor snapshots taken
along imagination training, random controls, holding still, and the scripted person's recorded
controls — the Spearman rank correlation of dream return against real return says whether the
model orders policies the way reality does, which is what choosing a policy needs.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.actions import CONTROL_HIGH, CONTROL_LOW
from egoworld.imagine.actor_critic import (
    ACConfig,
    Actor,
    load_policy,
    save_policy,
    start_pool,
    train_actor_critic,
)
from egoworld.imagine.dream import DreamEnv, FilteredSimEnv, Starts, check_progress, load_starts
from egoworld.imagine.plan import Objective, PlannerConfig
from egoworld.imagine.policy import ActorPolicy, PlannerPolicy, Policy, Replay, Still, UniformRandom, latent_cost, rollout
from egoworld.model import WorldModel

EVAL_KEYS = ("state", "latent")  # what the policies read; decoding images is only for the video


REPLAY_NOISE = (0.05, 0.15, 0.3)  # the scripted person made clumsier: policies of graded real quality
RANK_PLANNER = dict(samples=32, iterations=2)  # the planner ranked beside the actor (cheaper than the closed-loop one)


def run_episode(env: Any, policy: Policy, start: int, record: bool = False) -> dict[str, Any]:
    """One episode from ``start`` (``rollout`` with the start as reset option and policy key)."""
    return rollout(policy, env, key=start, seed=start, options={"start": start}, record=record)


def recorded_outcome(row: dict, horizon: int) -> dict[str, Any] | None:
    """What the scripted person really achieved from this start within ``horizon`` frames, up to its first
    success (sim truth)."""
    import pyarrow.parquet as pq

    path = row.get("session_path")
    if not path or not (Path(path) / "truth" / "frames.parquet").exists():
        return None
    t = pq.read_table(Path(path) / "truth" / "frames.parquet", columns=["frame", "progress", "success"])
    frame = t.column("frame").to_numpy()
    prog = t.column("progress").to_numpy()
    succ = t.column("success").to_numpy(zero_copy_only=False)
    f0, f1 = row["frame"], min(row["frame"] + horizon, int(frame.max()))
    hit = frame[(frame > f0) & (frame <= f1) & succ]
    end = int(hit.min()) if len(hit) else f1  # the envs end an episode at success: so does this
    return {"return": float(prog[frame == end][0] - prog[frame == f0][0]), "success": bool(len(hit))}


def _spearman(x: list[float], y: list[float]) -> dict[str, float | None]:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p": None, "n": len(x)}
    r = spearmanr(x, y)
    return {"rho": float(r.statistic), "p": float(r.pvalue), "n": len(x)}


def evaluate_policies(model: WorldModel, starts: Starts, policies: list[Policy], horizon: int, sim: bool = True,
                      dream_sample: bool = False, video: tuple[str, int] | None = None,
                      echo: Callable[[str], None] = print, progress: str = "head") -> dict[str, Any]:
    """Every policy from every start, in the dream and (``sim``) in the simulator; per-policy summary and ranking.

    ``video=(policy name, start)`` keeps that episode's frames (simulator and dream) under ``"video"``.
    ``progress``: what the dream's reward reads (``DreamEnv``).
    """
    dream = DreamEnv(model, starts, max_steps=horizon, obs_keys=EVAL_KEYS, sample=dream_sample, progress=progress)
    real = FilteredSimEnv(model, starts, max_steps=horizon, obs_keys=EVAL_KEYS) if sim else None
    per: dict[str, list[dict]] = {}
    frames: dict[str, list[np.ndarray]] = {}
    for pol in policies:
        rows = []
        t0 = time.time()
        for i in range(len(starts)):
            rec = video is not None and video == (pol.name, i)
            d = run_episode(dream, pol, i, record=rec)
            row = {"start": i, "dream_return": d["return"], "dream_success": d["success"], "dream_steps": d["steps"]}
            if rec:
                frames["dream"] = d["frames"]
            if real is not None and starts.rows[i].get("session_path"):
                s = run_episode(real, pol, i, record=rec)
                row.update({"real_return": s["return"], "real_success": s["success"], "real_steps": s["steps"],
                            "real_progress_start": s["progress_start"], "real_progress_end": s["progress_end"]})
                if rec:
                    frames["sim"] = s["frames"]
            rows.append(row)
        per[pol.name] = rows
        echo(f"{pol.name}: {len(rows)} starts in {time.time() - t0:.0f} s")
    if real is not None:
        real.close()
    recorded = [recorded_outcome(r, horizon) for r in starts.rows]
    return summarise(per, recorded, frames)


def summarise(per: dict[str, list[dict]], recorded: list[dict | None] | None = None,
              frames: dict[str, list] | None = None) -> dict[str, Any]:
    """Per-policy means, the dream-vs-real gap, and the rank correlations (over policies and over episodes)."""
    summary: dict[str, dict] = {}
    for name, rows in per.items():
        s: dict[str, Any] = {"starts": len(rows), "dream_return": float(np.mean([r["dream_return"] for r in rows])),
                             "dream_success": float(np.mean([r["dream_success"] for r in rows]))}
        real = [r for r in rows if "real_return" in r]
        if real:
            s.update({"real_return": float(np.mean([r["real_return"] for r in real])),
                      "real_success": float(np.mean([r["real_success"] for r in real])),
                      "real_progress_end": float(np.mean([r["real_progress_end"] for r in real])),
                      "gap": float(np.mean([r["dream_return"] - r["real_return"] for r in real])),
                      "abs_gap": float(np.mean([abs(r["dream_return"] - r["real_return"]) for r in real]))})
        summary[name] = s
    out: dict[str, Any] = {"policies": summary, "episodes": per}
    rec = [r for r in (recorded or []) if r is not None]
    if rec:
        out["scripted_recorded"] = {"starts": len(rec), "real_return": float(np.mean([r["return"] for r in rec])),
                                    "real_success": float(np.mean([r["success"] for r in rec])), "per_start": recorded}
    names = [n for n in summary if "real_return" in summary[n]]
    if names:
        out["rank_correlation"] = {
            "over_policies": _spearman([summary[n]["dream_return"] for n in names], [summary[n]["real_return"] for n in names]),
            "over_episodes": _spearman([r["dream_return"] for n in names for r in per[n] if "real_return" in r],
                                       [r["real_return"] for n in names for r in per[n] if "real_return" in r]),
            "policies": names,
        }
    if frames:
        out["video"] = frames
    return out


def write_video(path: str | Path, sim_frames: list[np.ndarray], dream_frames: list[np.ndarray], fps: float,
                min_height: int = 256) -> Path:
    """Simulator (left) beside the dream (right), both scaled (nearest) to one height ≥ ``min_height``, one frame per step."""
    import cv2

    from egoworld.video import VideoWriter

    h = max(sim_frames[0].shape[0], min_height)
    n = max(len(sim_frames), len(dream_frames))
    out = []

    def fit(f: np.ndarray) -> np.ndarray:
        return cv2.resize(f, (int(round(f.shape[1] * h / f.shape[0])), h), interpolation=cv2.INTER_NEAREST)

    for k in range(n):
        s = fit(sim_frames[min(k, len(sim_frames) - 1)])
        d = fit(dream_frames[min(k, len(dream_frames) - 1)])
        f = np.concatenate([s, np.full((h, 2, 3), 255, np.uint8), d], 1)
        f = f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2]  # H.264 4:2:0 wants even sides
        out.append(np.ascontiguousarray(f))
    with VideoWriter(path, out[0].shape[1], out[0].shape[0], fps) as w:
        for k, f in enumerate(out):
            w.write(f, int(round(k * 1e9 / fps)))
    return Path(path)


def planner_objective(progress: str) -> Objective:
    """The ranked planner scores plans by what the dream's reward reads: the reward head, or the tracked points."""
    return Objective(progress=0.0, track=1.0) if progress == "track" else Objective()


def run_dream(run: str | Path, task: str, out: str | Path, data: str | None = None, cfg: ACConfig | None = None,
              eval_starts: int = 8, horizon: int = 150, eval_split: str = "all", sim: bool = True, video: bool = True,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    """``egoworld dream``: train an actor-critic in imagination, save it, evaluate it (and baselines) in both worlds."""
    run, out = Path(run), Path(out)
    ckpt = runs.resolve(run)
    model, mcfg = runs.load_model(ckpt)
    data = data or runs.read_lineage(run).get("data")
    if not data:
        raise ValueError(f"{run}: its lineage.json names no data set; pass --data")
    cfg = (cfg or ACConfig()).replace(task=task)
    check_progress(model, cfg.progress)
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    echo(f"policy config:\n{json.dumps(asdict(cfg), indent=2)}")
    t0 = time.time()
    pool = start_pool(model, data, task, cfg)
    echo(f"{len(pool)} start states from {len(pool.episodes)} {task} episodes ({time.time() - t0:.0f} s)")

    snap_dir = out / "snapshots"
    snapshots: list[tuple[str, int]] = []

    def keep(name: str, actor: Actor, step: int) -> None:
        runs.save_weights(snap_dir / f"{name}.safetensors", actor, {"format": "pt", "step": str(step)})
        snapshots.append((name, step))

    ac, log = train_actor_critic(model, pool, cfg, on_snapshot=keep, echo=echo)
    model_info = {"run": str(run), "checkpoint": str(ckpt), "model_sha256": runs.model_sha256(ckpt),
                  "model_config": json.loads(mcfg.to_json())}
    info = {"feat_size": mcfg.feat_size, "task": task, "data": str(data), "model": model_info,
            "start_episodes": pool.episodes, "train_log": log,
            "snapshots": [{"name": n, "step": s} for n, s in snapshots],
            "control": {"low": CONTROL_LOW.tolist(), "high": CONTROL_HIGH.tolist(), "normalised": "[-1, 1] per dim"}}
    save_policy(out, ac, info)
    echo(f"policy saved to {out} ({log[-1]['step']} updates in {log[-1]['time_s']:.0f} s)")

    starts = load_starts(model, data, task, n=eval_starts, context=mcfg.context, horizon=horizon, split=eval_split,
                         seed=cfg.seed + 1)
    sim = sim and any(r.get("session_path") for r in starts.rows)
    final = snapshots[-1][0]
    policies: list[Policy] = [ActorPolicy(ac.actor, "actor")]
    for name, step in snapshots[:-1]:
        policies.append(ActorPolicy(load_policy(out, snapshot=name)[0], f"actor@{step}"))
    policies += [UniformRandom(cfg.seed), Still(),
                 PlannerPolicy(PlannerConfig(**RANK_PLANNER, seed=cfg.seed), latent_cost(model, planner_objective(cfg.progress)),
                               name="planner")]
    if sim:
        policies.append(Replay(starts))
        policies += [Replay(starts, noise=n, seed=cfg.seed) for n in REPLAY_NOISE]
    res = evaluate_policies(model, starts, policies, horizon, sim=sim, video=("actor", 0) if video else None, echo=echo,
                            progress=cfg.progress)
    frames = res.pop("video", None)
    if frames and "sim" in frames:
        res["video"] = str(write_video(out / "policy.mp4", frames["sim"], frames["dream"], starts.fps).name)
    elif frames and "dream" in frames:
        res["video"] = str(write_video(out / "policy.mp4", frames["dream"], frames["dream"], starts.fps).name)
    res.update({"task": task, "horizon": horizon, "eval_split": eval_split, "final_snapshot": final,
                "starts": [{k: v for k, v in r.items() if k != "session_path"} for r in starts.rows],
                "simulator": sim, "model": {k: v for k, v in model_info.items() if k != "model_config"},
                "seconds": round(time.time() - t0, 1)})
    write_json(out / "eval.json", res)
    return res
