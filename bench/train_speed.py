"""Training steps/s of egoworld's world model against a plain PyTorch RSSM of the same size and batch.

    python bench/train_speed.py [--preset tiny] [--size 64] [--steps 5] [--rounds 3]

Three parts, one run:

1. steps/s of an egoworld training step (``world_model_loss`` + backward + ``train.optim.Adam``,
   what ``egoworld train`` runs per step) and of the plain reference (``bench/rssm_reference.py``:
   the DreamerV3 architecture at the preset's sizes, written as a port writes it, with
   ``torch.optim.Adam``), on the same batch of square-world clips. The machine may be shared:
   each round times both, in an order that alternates, and the ratio is taken within the round.
2. where an egoworld step's time goes: encoder, RSSM scan, decoder, the rest of the losses
   (heads, KL, open-loop overshooting), backward, optimizer.
3. ``train.optim.Adam`` against ``torch.optim.Adam`` (for-loop, ``foreach``, ``fused``) on the
   model's parameters and gradients, and what constructing each costs in a fresh process
   (``torch.optim`` imports ``torch._dynamo`` on first use).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import model_config
from rssm_reference import PlainWorldModel

from egoworld.model import Noise, WorldModel, world_model_loss
from egoworld.train.data import collate
from egoworld.train.optim import Adam
from egoworld.train.synthetic import SyntheticClips


def _per_call(fn, n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _construct_s(code: str) -> float:
    """Seconds a fresh interpreter spends on ``code`` after importing torch (median of 3)."""
    prog = ("import time, torch; from torch import nn; p = list(nn.Linear(8, 8).parameters()); t = time.perf_counter(); "
            + code + "; print(time.perf_counter() - t)")
    runs = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True)
        runs.append(float(r.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: the preset's, else torch's default)")
    a = ap.parse_args()
    cfg = model_config(a)
    ds = SyntheticClips(episodes=4, length=cfg.seq_len + 8, T=cfg.seq_len, size=a.size)
    batch = collate(ds, [i % len(ds) for i in range(cfg.batch_size)])

    model = WorldModel(cfg)
    model.set_action_stats(*ds.action_stats())
    opt = Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    ref = PlainWorldModel(a.size, cfg.cnn_depth, cfg.cnn_min_res, cfg.deter, cfg.stoch, cfg.classes, cfg.hidden,
                          cfg.action_dim, cfg.reward_bins, cfg.unimix, cfg.free_nats)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    act = model.norm_action(batch["action"], batch["action_valid"])

    def ours() -> None:
        loss, _ = world_model_loss(model, batch, Noise(torch.Generator().manual_seed(0), cfg.batch_size))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def plain() -> None:
        loss = ref.loss(batch["image"], act, batch["reward"], batch["done"])
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()

    n_ours = sum(p.numel() for p in model.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    print(f"preset {cfg.preset} at {a.size}², batch {cfg.batch_size} × {cfg.seq_len} frames, {torch.get_num_threads()} "
          f"torch threads; egoworld {n_ours / 1e6:.2f} M parameters, plain reference {n_ref / 1e6:.2f} M")
    jobs = [("egoworld", ours), ("plain RSSM", plain)]
    rounds = []
    for r in range(a.rounds):
        t = {name: _per_call(fn, a.steps) for name, fn in (jobs if r % 2 == 0 else jobs[::-1])}
        rounds.append(t)
        print(f"round {r + 1}: egoworld {1 / t['egoworld']:.2f} steps/s, plain RSSM {1 / t['plain RSSM']:.2f} steps/s, "
              f"ratio {t['plain RSSM'] / t['egoworld']:.2f}×", flush=True)
    ratio = [t["plain RSSM"] / t["egoworld"] for t in rounds]
    print(f"egoworld / plain RSSM steps/s: {statistics.median(ratio):.2f}× [{min(ratio):.2f}–{max(ratio):.2f}] "
          f"(target ≥ 1.5×: {'met' if statistics.median(ratio) >= 1.5 else 'missed'})")

    # --- where an egoworld step's time goes ---
    noise = lambda: Noise(torch.Generator().manual_seed(0), cfg.batch_size)
    B, T = batch["image"].shape[:2]
    embed = model.embed(batch["image"]).detach()
    sensed, known = model.sense(batch["state"], (B, T), None)
    posts, _, _ = model.rssm.observe_body(embed, act, noise(), body=sensed, known=known)
    feat = posts.feat().detach()
    refimg = model.reference(batch["image"][:, 0], feat[:, 0])
    rot = model.head_rotation(batch["action"][:, :T - 1], batch["action_valid"][:, :T - 1])
    n = a.steps
    parts = {
        "encoder (forward)": _per_call(lambda: model.embed(batch["image"]), n),
        "RSSM scan (forward)": _per_call(lambda: model.rssm.observe_body(embed, act, noise(), body=sensed, known=known), n),
        "decoder (forward, frames 1..T-1)": _per_call(lambda: model.decode(feat[:, 1:], refimg, rot), n),
    }
    holder = {}

    def forward() -> None:
        holder["loss"] = world_model_loss(model, batch, noise())[0]

    t_fwd = _per_call(forward, n)
    parts["other losses: heads, KL, overshooting (forward)"] = max(t_fwd - sum(parts.values()), 0.0)

    def backward() -> None:
        opt.zero_grad()
        world_model_loss(model, batch, noise())[0].backward()

    parts["backward"] = max(_per_call(backward, n) - t_fwd, 0.0)
    parts["optimizer (train.optim.Adam)"] = _per_call(opt.step, 5 * n)
    total = sum(parts.values())
    print(f"\nwhere an egoworld step's {total * 1e3:.0f} ms go:")
    for k, v in parts.items():
        print(f"  {k:48s} {v * 1e3:8.1f} ms  {100 * v / total:5.1f} %")

    # --- the optimizer ---
    grads = [p.grad.clone() for p in model.parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opts = {"train.optim.Adam": Adam(params, lr=cfg.lr, eps=cfg.adam_eps),
            "torch.optim.Adam(foreach=False)": torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, foreach=False),
            "torch.optim.Adam(foreach=True)": torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, foreach=True),
            "torch.optim.Adam(fused=True)": torch.optim.Adam(params, lr=cfg.lr, eps=cfg.adam_eps, fused=True)}
    cons = {"train.optim.Adam": "import egoworld.train.optim as o; o.Adam(p, lr=1e-3)",
            "torch.optim.Adam(foreach=False)": "torch.optim.Adam(p, lr=1e-3, foreach=False)",
            "torch.optim.Adam(foreach=True)": "torch.optim.Adam(p, lr=1e-3, foreach=True)",
            "torch.optim.Adam(fused=True)": "torch.optim.Adam(p, lr=1e-3, fused=True)"}
    steps = {k: [] for k in opts}
    for r in range(a.rounds):
        for k, o in (list(opts.items()) if r % 2 == 0 else list(opts.items())[::-1]):
            steps[k].append(_per_call(o.step, 20))
    base = statistics.median(steps["train.optim.Adam"])
    print(f"\noptimizer step on {len(params)} tensors ({n_ours / 1e6:.2f} M values), median of {a.rounds} rounds; "
          f"construction in a fresh process:")
    for k in opts:
        m = statistics.median(steps[k])
        print(f"  {k:34s} {m * 1e3:7.2f} ms/step  ({base / m:.2f}× the speed of train.optim.Adam)   "
              f"construct {_construct_s(cons[k]):.2f} s")


if __name__ == "__main__":
    main()
