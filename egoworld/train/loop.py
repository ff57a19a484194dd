"""The training loop, top to bottom: one process or torchrun (gloo on CPU, NCCL on GPU).

Determinism is by construction, so that a run killed with SIGKILL and resumed ends exactly
where an unkilled run ends:
  * the batch at step s is a pure function of (seed, s) (``data.batch_indices``);
  * the latent-sampling noise at step s comes from a generator seeded with (seed, s);
  * the number of steps is fixed once — from ``--steps`` or by timing the first steps against
    ``--minutes`` — and written to ``plan.json`` before the first checkpoint, so a resumed run
    does not re-decide it;
  * model, optimizer (Adam moments) and the learning-rate schedule position are restored.
With N processes (torchrun, one node or many) every rank reads only its own shard of whole
episodes (``ClipDataset(shard=…)``: no rank decodes a clip it does not train on). Every rank builds
the same global batch and computes the samples whose clips it owns — how many varies from step to
step — draws the global batch's noise and keeps its rows, weighs its mean loss by its share of the
batch, and the gradients are summed with one all-reduce: the update is the single-process update
up to float summation order, whatever the number of ranks (so a run can resume on another number).
The one term that is not a per-sample mean is the reward loss, normalised by the labelled frames of
the batch: it matches exactly when every clip has labels or none has.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.model import Config, Noise, WorldModel, world_model_loss
from egoworld.train import checkpoint as ck
from egoworld.train.data import (
    action_stats,
    batch_indices,
    collate,
    open_clips,
    rank_positions,
    register_run_on_store,
    sample_epochs,
)
from egoworld.train.lineage import build_lineage
from egoworld.train.optim import Adam

LOG_FIELDS = ["step", "split", "time_s", "lr", "loss", "image", "state", "reward", "cont", "dyn", "rep", "ol_kl",
              "ol_image", "ol_state", "samples_per_s", "ego", "ol_ego", "scene", "ol_scene",
              "body", "ol_body", "ol_reward", "ol_cont"]
CALIBRATE_STEPS = (3, 15)  # time steps [3, 15) to turn --minutes into a step count


def lr_at(cfg: Config, step: int, total: int | None) -> float:
    """Linear warm-up, then cosine decay to 10 % over the planned steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if not total:
        return cfg.lr
    frac = min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


class _RowNoise(Noise):
    """The global batch's noise, keeping the rows of this rank's samples (not one contiguous slice)."""

    def __init__(self, generator: torch.Generator, global_batch: int, rows: list[int]) -> None:
        super().__init__(generator, global_batch, 0)
        self.rows = torch.tensor(rows, dtype=torch.long)

    def uniform(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        u = torch.rand((self.global_batch,) + tuple(shape[1:]), generator=self.generator, device=self.generator.device)
        return u[self.rows].to(device)


METRIC_KEYS = [f for f in LOG_FIELDS if f not in ("step", "split", "time_s", "lr", "samples_per_s")]


def _allreduce_grads(model: torch.nn.Module) -> None:
    """Sum the (already batch-share weighted) gradients of all ranks with one flat all-reduce (missing grads count as zero)."""
    params = [p for p in model.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    i = 0
    for p in params:
        n = p.numel()
        p.grad = flat[i:i + n].view_as(p).clone()
        i += n


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a resumed run re-logs them identically)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)
    os.replace(tmp, path)


def validate(model: WorldModel, ds: Any, cfg: Config) -> dict[str, float]:
    """Mean loss parts over ``val_batches`` fixed batches spread evenly over the validation clips."""
    model.eval()
    n = min(len(ds), cfg.val_batches * cfg.batch_size)
    idx = [int(i * len(ds) / n) for i in range(n)]
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for j in range(0, n, cfg.batch_size):
            part = idx[j:j + cfg.batch_size]
            noise = Noise(torch.Generator().manual_seed(cfg.seed + 12345 + j), len(part), 0)
            _, m = world_model_loss(model, collate(ds, part), noise)
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v * len(part)
            count += len(part)
    model.train()
    return {k: v / count for k, v in sums.items()}


def train(cfg: Config, data: str, out: str | Path, resume: bool = False, progress: bool = True,
          grad_dump: str | Path | None = None, echo: Callable[[str], None] = print,
          init_from: str | Path | None = None) -> dict[str, Any]:
    """Train a world model on ``data`` into run folder ``out``; return a summary (steps, losses, checkpoint).

    ``init_from``: start from that run's (or checkpoint's) weights — fine-tuning on a grown store; the
    config must match the checkpoint's model, and its action normalisation is kept."""
    rank, world = _dist()
    out = Path(out)
    is_main = rank == 0
    existing = runs.list_checkpoints(out)
    plan_file = out / "plan.json"
    if existing and not resume:
        raise FileExistsError(f"{out} already holds checkpoints; pass --resume to continue it, or choose another --out")
    if resume and (out / "config.json").exists():
        cfg = runs.read_config(out)  # the run's own config wins
    if cfg.threads or world > 1:
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world))
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")

    train_ds = open_clips(data, cfg, "train", for_training=True,  # checks the whole store first
                          shard=(rank, world) if world > 1 else None)
    left_out = dict(getattr(train_ds, "left_out", {}) or {})
    if left_out and is_main:
        echo(f"left out {len(left_out)} episode(s) of the training split: "
             + "; ".join(f"{sid} ({why})" for sid, why in sorted(left_out.items())))
    if len(train_ds) == 0:
        raise ValueError(f"{data}: the training split has no clips of {cfg.seq_len} frames")
    try:
        val_ds = open_clips(data, cfg, "val", for_training=True)
        val_ds = val_ds if len(val_ds) else None
    except (ValueError, KeyError):
        val_ds = None

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = WorldModel(cfg)
    model.set_action_stats(*action_stats(train_ds))
    init_info = None
    if init_from is not None and not resume:
        src = runs.resolve(init_from)
        try:  # strict; brings its action stats along
            model.load_state_dict(runs.load_weights(src / runs.WEIGHTS))
        except RuntimeError as e:
            raise ValueError(f"{src}: its weights do not fit this config (train with the --set options it was "
                             f"trained with, {src / 'config.json'}): {str(e).splitlines()[0]}") from None
        init_info = {"init_from": {"checkpoint": str(src), "model_sha256": runs.model_sha256(src)}}
    opt = Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    lineage = build_lineage(data, train_ds, ({"left_out": left_out} if left_out else {}) | (init_info or {}) or None)

    step, total, best = 0, (cfg.steps or None), math.inf
    if plan_file.exists() and resume:
        total = json.loads(plan_file.read_text())["total_steps"]
    if resume and existing:
        state = ck.load_training_state(existing[-1], model, opt)
        step, total = state["step"], state["total_steps"]
        best = state["best_val"] if state.get("best_val") is not None else math.inf
        if is_main:
            echo(f"resuming {out} from {existing[-1].name} (step {step} of {total})")
    if is_main:
        echo(f"config ({cfg.preset}):\n{cfg.to_json()}")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", json.loads(cfg.to_json()))
        write_json(out / "lineage.json", lineage)
        register_run_on_store(train_ds, out, lineage)
        if total is not None and not plan_file.exists():
            write_json(plan_file, {"total_steps": total, "from": "--steps"})
        for name in ("metrics.csv", "data_order.csv"):
            _truncate_csv(out / name, step - 1 if name == "data_order.csv" else step)
    log_f = open(out / "metrics.csv", "a", newline="") if is_main else None
    order_f = open(out / "data_order.csv", "a", newline="") if is_main else None
    logger = csv.DictWriter(log_f, LOG_FIELDS, restval="", extrasaction="ignore") if log_f else None
    if log_f and log_f.tell() == 0:
        logger.writeheader()
        order_f.write("step,indices\n")

    t_start = time.time()
    if hasattr(train_ds, "frames") and getattr(train_ds, "cache_enabled", False):
        # Decode every training frame once into the loader's cache before anything is timed: the
        # first epoch would pay this anyway, and a --minutes plan timed on cold decodes would
        # under-count the steps that fit.
        t_warm = time.time()
        for i in range(0, len(train_ds), 2):
            if world == 1 or train_ds.owner_of(i) == rank:
                train_ds[i]
        if is_main:
            echo(f"frame cache warmed in {time.time() - t_warm:.0f} s")

    from tqdm import tqdm

    bar = tqdm(total=total, initial=step, disable=not (progress and is_main), desc="train", dynamic_ncols=True)
    t_cal, last = None, {}
    n = len(train_ds)
    try:
        while total is None or step < total:
            lr = lr_at(cfg, step, total)
            opt.lr = lr
            idx = batch_indices(step, n, cfg.batch_size, cfg.seed)
            epochs = sample_epochs(step, n, cfg.batch_size)
            rows = rank_positions(train_ds, idx, rank, world)
            opt.zero_grad()
            metrics = {}
            if rows:
                batch = collate(train_ds, [idx[j] for j in rows], [epochs[j] for j in rows])
                gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
                noise = Noise(gen, cfg.batch_size, 0) if world == 1 else _RowNoise(gen, cfg.batch_size, rows)
                loss, metrics = world_model_loss(model, batch, noise)
                (loss * (len(rows) / cfg.batch_size) if world > 1 else loss).backward()
            if world > 1:
                _allreduce_grads(model)
            if grad_dump is not None and step == 0 and is_main:
                runs.save_weights(grad_dump, {k: p.grad for k, p in model.named_parameters() if p.grad is not None})
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if order_f:
                order_f.write(f"{step}," + " ".join(map(str, idx)) + "\n")
            step += 1
            bar.update(1)

            if total is None:  # decide the step count from the time budget, once
                if step == CALIBRATE_STEPS[0]:
                    t_cal = time.time()
                elif step == CALIBRATE_STEPS[1]:
                    per_step = (time.time() - t_cal) / (CALIBRATE_STEPS[1] - CALIBRATE_STEPS[0])
                    overhead = 1 + cfg.val_batches * 0.4 / cfg.val_every
                    budget = cfg.minutes * 60 * 0.93 - (time.time() - t_start)
                    plan = torch.tensor([max(step + 1, step + int(budget / (per_step * overhead)))])
                    if world > 1:
                        dist.broadcast(plan, 0)
                    total = int(plan)
                    bar.total = total
                    if is_main:
                        write_json(plan_file, {"total_steps": total, "from": f"--minutes {cfg.minutes}",
                                               "seconds_per_step": per_step})

            if step % cfg.log_every == 0 or step == total:
                if world > 1:  # the batch's mean: each rank's means weighed by its number of samples
                    vals = torch.tensor([[metrics.get(k, 0.0) * len(rows), len(rows) if k in metrics else 0]
                                         for k in METRIC_KEYS], dtype=torch.float64)
                    dist.all_reduce(vals)
                    metrics = {k: float(v / c) for k, (v, c) in zip(METRIC_KEYS, vals.tolist()) if c > 0}
                elapsed = time.time() - t_start
                last = metrics
                if logger:
                    logger.writerow(dict(metrics, step=step, split="train", time_s=round(elapsed, 2), lr=lr,
                                         samples_per_s=round(step * cfg.batch_size / max(elapsed, 1e-9), 2)))
                    log_f.flush()
                    order_f.flush()
                bar.set_postfix(loss=f"{metrics['loss']:.1f}", img=f"{metrics['image']:.1f}",
                                kl=f"{metrics['dyn']:.2f}", ol=f"{metrics.get('ol_image', 0):.1f}")

            final = total is not None and step >= total
            if is_main and (step % cfg.ckpt_every == 0 or final):
                val = validate(model, val_ds, cfg) if val_ds is not None and (step % cfg.val_every == 0 or final) else None
                score = val["loss"] if val else None
                if val and logger:
                    logger.writerow(dict(val, step=step, split="val", time_s=round(time.time() - t_start, 2), lr=lr))
                    log_f.flush()
                is_best = score is not None and score < best
                best = min(best, score) if score is not None else best
                path = ck.save_checkpoint(out, step, model, opt, cfg, lineage,
                                          {"total_steps": total, "best_val": best if math.isfinite(best) else None,
                                           "val": val, "world_size": world})
                if is_best or (val_ds is None and final):
                    runs.write_best(out, path, score if score is not None else metrics["loss"], step)
                runs.prune(out, cfg.keep_last)
            elif is_main and val_ds is not None and step % cfg.val_every == 0:
                val = validate(model, val_ds, cfg)
                if logger:
                    logger.writerow(dict(val, step=step, split="val", time_s=round(time.time() - t_start, 2), lr=lr))
            if world > 1 and (step % cfg.ckpt_every == 0 or step % cfg.val_every == 0):
                dist.barrier()
    finally:
        bar.close()
        for f in (log_f, order_f):
            if f:
                f.close()
        if world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    return {"steps": step, "total_steps": total, "train": last, "best_val": best if math.isfinite(best) else None,
            "checkpoint": str(runs.resolve(out)) if is_main else None, "seconds": time.time() - t_start}
