"""Cost per imagined state against the simulator it replaces, at a planner's batch sizes, same run.

    python bench/imagine.py [--preset tiny] [--size 64] [--batches 64,256,1024,4096] [--rounds 3]

One imagined state is one latent step of the world model (GRU, prior, categorical sample and the
body's step: ``RSSM.img_step``) for each of B candidates at once, as a planner (MPPI over B action
sequences) or an actor-critic (B imagined starts) takes it; "+ heads" adds the reward and
continuation heads a planner scores each state with. The baseline is one MuJoCo ``step(control)
+ render()`` of a recorded sim scene at the same image size (a short session is captured into a
temporary folder once). The machine may be shared: each round measures the simulator and every
batch size in turn, in an order that alternates from round to round, and each ratio is taken
within its round; the median round is printed with the range. Goal (issue 16): ≥ 1000× cheaper
per state across 64–4096.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from common import model_config, sim_step_timer
from egoworld.model import Noise, WorldModel


def _best(fn, repeat: int, number: int) -> float:
    """Seconds per call: the best of ``repeat`` timings of ``number`` calls (after one warm-up)."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return min(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batches", default="64,256,1024,4096")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the preset's, else torch's default)")
    a = ap.parse_args()
    cfg = model_config(a)
    model = WorldModel(cfg).eval()
    batches = [int(b) for b in a.batches.split(",")]

    def step_fn(B: int, heads: bool):
        with torch.inference_mode():
            s = model.rssm.img_step(_start(model, B), torch.zeros(B, cfg.action_dim))
        act = torch.randn(B, cfg.action_dim, generator=torch.Generator().manual_seed(1))
        noise = Noise(torch.Generator().manual_seed(2))

        def fn() -> None:
            with torch.inference_mode():
                n = model.rssm.img_step(s, act, noise)
                if heads:
                    f = n.feat()
                    model.reward_head(f)
                    model.cont_head(f)
        return fn

    with sim_step_timer(a.size) as sim_fn:
        jobs = [(None, False)] + [(B, h) for B in batches for h in (False, True)]
        fns = {(B, h): step_fn(B, h) for B, h in jobs if B}
        rounds = []
        for r in range(a.rounds):
            t = {}
            for B, h in (jobs if r % 2 == 0 else jobs[::-1]):
                if B is None:
                    t["sim"] = min(sim_fn() for _ in range(2))
                else:
                    t[(B, h)] = _best(fns[(B, h)], 3, max(3, 20000 // B))
            rounds.append(t)
            print(f"round {r + 1}: MuJoCo step+render {t['sim'] * 1e3:.2f} ms; "
                  + ", ".join(f"B={B}{' +heads' if h else ''} {t[(B, h)] / B * 1e6:.2f} µs/state"
                              for B, h in jobs if B), flush=True)

    print(f"\npreset {cfg.preset} at {a.size}², {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
          f"{torch.get_num_threads()} torch threads; MuJoCo step+render {statistics.median(r['sim'] for r in rounds) * 1e3:.2f} ms "
          f"(median of rounds)")
    print(f"{'batch':>6s} {'µs/state':>9s} {'× cheaper than MuJoCo (median [min–max])':>44s} {'+ heads µs':>11s} {'× cheaper':>24s}")
    worst = float("inf")
    for B in batches:
        cells = []
        for h in (False, True):
            per = [r[(B, h)] / B for r in rounds]
            ratio = [r["sim"] / (r[(B, h)] / B) for r in rounds]
            worst = min(worst, statistics.median(ratio))
            cells.append(f"{statistics.median(per) * 1e6:9.2f} {statistics.median(ratio):>20.0f}× [{min(ratio):.0f}–{max(ratio):.0f}]")
        print(f"{B:6d} {cells[0]:>53s}  {cells[1]}")
    print(f"goal ≥ 1000× per state at every batch size: {'met' if worst >= 1000 else 'missed'} (lowest median {worst:.0f}×)")


def _start(model: WorldModel, B: int):
    from egoworld.model.rssm import State

    cfg = model.cfg
    z = torch.zeros(B, cfg.stoch, cfg.classes)
    z[..., 0] = 1
    return State(model.rssm.initial_h(B).clone(), z, z.clone(), model.rssm.initial_b(B))


if __name__ == "__main__":
    main()
