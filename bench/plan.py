"""Replan time of the world-model planner, against the same plan with rollouts in the simulator, in one run.

    python bench/plan.py [--preset tiny] [--run RUN] [--samples 64] [--iterations 3] [--horizon 4] [--repeat 3]
                         [--method cem] [--threads 1] [--replans 10]

Prints: the world-model replan time (filter the last ``context`` real frames, then CEM/MPPI with
batched latent rollouts, nothing decoded) split into filtering and planning, with and without
the warm start carried between replans; the target (0.5 s on 2 CPU cores at the tiny preset);
and the baseline from the same run: one replan of the sim-oracle — the same planner, the same
number of candidate rollouts of the same length, stepped in MuJoCo from the true state. A
randomly initialised model (``--run`` not given) times the same as a trained one.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from egoworld.capture.sim.catalog import person as person_spec
from egoworld.capture.sim.env import SimEnv
from egoworld.evaluate.closed_loop import SimCost
from egoworld.imagine.plan import MPC, PlannerConfig, WorldModelCost, make_planner
from egoworld.model import WorldModel, preset

TARGET_S = 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--run", default=None, help="a trained run (default: a randomly initialised model of --preset)")
    ap.add_argument("--method", default="cem")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--horizon", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--replans", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the tiny preset's)")
    ap.add_argument("--render", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.run:
        from egoworld.runs import load_model

        model, cfg = load_model(a.run, decoder=False)
    else:
        cfg = preset(a.preset)
        model = WorldModel(cfg).eval()
    pc = PlannerConfig(method=a.method, samples=a.samples, iterations=a.iterations, horizon=a.horizon, repeat=a.repeat)

    env = SimEnv("push", place=0, person=0, width=a.render, height=a.render)
    obs, _ = env.reset(seed=0)
    wm = WorldModelCost(model, person_spec(0).hand_scale, cfg.context)
    mpc = MPC(make_planner(pc), wm)
    wm.observe(obs["image"], state=obs["state"])
    rest = np.zeros(20)
    rest[[12, 19]] = env.sim.grips
    for _ in range(cfg.context - 1):  # a full filter window, as in closed loop
        obs, *_ = env.step(rest)
        wm.observe(obs["image"], rest, obs["state"])
    frames = [obs["image"]] * 2

    filt, plan, total = [], [], []
    for k in range(a.replans + 1):
        wm.observe(frames[k % 2], rest, obs["state"])  # a new frame arrived: the next plan re-filters
        t0 = time.perf_counter()
        wm.start_state()
        t1 = time.perf_counter()
        mpc.queue.clear()
        mpc.act()
        t2 = time.perf_counter()
        if k:  # the first one warms up
            filt.append(t1 - t0)
            plan.append(t2 - t1)
            total.append(t2 - t0)

    sim_cost = SimCost(env)
    oracle = make_planner(pc)
    t0 = time.perf_counter()
    oracle.plan(sim_cost)
    t_sim = time.perf_counter() - t0
    env.close()

    n_roll = a.samples * a.iterations
    t_wm = float(np.median(total))
    print(f"preset {cfg.preset} ({'trained: ' + a.run if a.run else 'random init'}), {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
          f"parameters, {torch.get_num_threads()} torch thread(s); {a.method.upper()} {a.samples} samples x {a.iterations} iterations, "
          f"horizon {a.horizon} knots x {a.repeat} frames = {pc.frames} frames ({n_roll * pc.frames} latent steps per replan)")
    print(f"world-model replan: median {t_wm:.3f} s, max {max(total):.3f} s  (filter {np.median(filt) * 1e3:.0f} ms "
          f"over {cfg.context} frames, plan {np.median(plan) * 1e3:.0f} ms)")
    print(f"target {TARGET_S:.2f} s: ratio target / replan = {TARGET_S / t_wm:.2f}x ({'meets' if t_wm <= TARGET_S else 'misses'} it)")
    print(f"sim-oracle replan, same planner, MuJoCo rollouts from the true state: {t_sim:.2f} s   (baseline)")
    print(f"ratio sim-oracle replan / world-model replan: {t_sim / t_wm:.1f}x faster in the model")


if __name__ == "__main__":
    main()
