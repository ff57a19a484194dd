"""Training and imagination speed of the world model, against the simulator it replaces, in one run.

    python bench/train.py [--preset tiny] [--size 64] [--steps 10] [--batch 16] [--threads 0]

Prints: train steps/s (and frames/s) for the preset on square-world clips of the preset's shape;
imagination steps/s — one latent step (GRU + prior + sample) for one state and per state in a
batch, with and without decoding the frame; and the baseline from the same run: a MuJoCo
``step(control) + render()`` of a recorded sim scene at the same resolution (a short session is
captured into a temporary folder). The ratio says how many times faster a latent step is than
stepping and rendering the real scene.
"""
from __future__ import annotations

import argparse
import time

import torch

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from common import model_config, sim_step_timer
from egoworld.model import Noise, WorldModel, world_model_loss
from egoworld.model.rssm import State
from egoworld.train.data import collate
from egoworld.train.optim import Adam
from egoworld.train.synthetic import SyntheticClips


def _timeit(fn, n: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the preset's, else torch's default)")
    a = ap.parse_args()
    cfg = model_config(a)

    # --- training ---
    ds = SyntheticClips(episodes=4, length=cfg.seq_len + 8, T=cfg.seq_len, size=a.size)
    model = WorldModel(cfg)
    model.set_action_stats(*ds.action_stats())
    opt = Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    batch = collate(ds, [i % len(ds) for i in range(cfg.batch_size)])

    def train_step() -> None:
        loss, _ = world_model_loss(model, batch, Noise(torch.Generator().manual_seed(0), cfg.batch_size))
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_train = _timeit(train_step, a.steps)

    # --- imagination ---
    model.eval()
    results = {}
    with torch.no_grad():
        for B in (1, a.batch):
            s = State(torch.zeros(B, cfg.deter), torch.zeros(B, cfg.stoch, cfg.classes), torch.zeros(B, cfg.stoch, cfg.classes),
                      model.rssm.initial_b(B))
            act = torch.zeros(B, cfg.action_dim)
            # decoding is relative to the rollout's real start frame: its encoder pass is made once per
            # rollout (``reference``), each step pays the decoder and the warp
            ref = model.reference(batch["image"][torch.arange(B) % len(batch["image"]), 0], s.feat())
            rot = torch.eye(3).expand(B, 1, 3, 3)
            results[(B, False)] = _timeit(lambda s=s, act=act: model.rssm.img_step(s, act), 200)
            results[(B, True)] = _timeit(
                lambda s=s, act=act, ref=ref, rot=rot: model.decode(model.rssm.img_step(s, act).feat()[:, None], ref, rot), 50)

    # --- the simulator, same resolution ---
    with sim_step_timer(a.size) as sim_fn:
        t_sim = sim_fn()

    frames = cfg.batch_size * cfg.seq_len
    print(f"preset {cfg.preset} at {a.size}x{a.size}, batch {cfg.batch_size} x {cfg.seq_len} frames, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {torch.get_num_threads()} torch threads")
    print(f"train:        {1 / t_train:8.2f} steps/s   ({frames / t_train:7.0f} frames/s)")
    for B in (1, a.batch):
        print(f"imagine B={B:<3d} {B / results[(B, False)]:8.0f} latent steps/s   "
              f"{B / results[(B, True)]:8.0f} steps/s with the frame decoded")
    print(f"MuJoCo step+render (same scene size): {1 / t_sim:8.1f} steps/s   (baseline)")
    print(f"ratio latent step / MuJoCo step+render (B=1):   {t_sim / results[(1, False)]:.1f}x faster")
    print(f"ratio decoded step / MuJoCo step+render (B=1):  {t_sim / results[(1, True)]:.1f}x faster")
    print(f"ratio per state in a batch of {a.batch}, decoded:      {t_sim / (results[(a.batch, True)] / a.batch):.1f}x faster")


if __name__ == "__main__":
    main()
