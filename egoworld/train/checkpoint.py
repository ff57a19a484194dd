"""Checkpoints: safetensors weights and optimizer state, JSON config/lineage/state — never pickle.

Layout of a run folder::

    RUN/config.json                 the full config (also inside every checkpoint)
    RUN/metrics.csv                 one row per logged step (train and val)
    RUN/data_order.csv              the clip indices of every global batch
    RUN/best.json                   which checkpoint has the lowest validation loss
    RUN/checkpoints/step_00000100/  model.safetensors, optimizer.safetensors, config.json,
                                    lineage.json, state.json

A checkpoint folder is written under a temporary name and renamed into place, so it either
exists complete or not at all: a SIGKILL mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from egoworld._atomic import write_json
from egoworld.model.config import Config
from egoworld.train.optim import Adam

CKPT_DIR = "checkpoints"


def _step_dir(run: Path, step: int) -> Path:
    return run / CKPT_DIR / f"step_{step:08d}"


def list_checkpoints(run: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are ignored)."""
    d = Path(run) / CKPT_DIR
    if not d.exists():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").exists())


def save_checkpoint(run: str | Path, step: int, model: torch.nn.Module, opt: Adam, cfg: Config,
                    lineage: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write checkpoint ``step`` atomically (temp folder, then rename) and return its folder."""
    run = Path(run)
    final = _step_dir(run, step)
    tmp = run / CKPT_DIR / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt", "step": str(step)})
    save_file(opt.tensors(), str(tmp / "optimizer.safetensors"), metadata={"format": "pt", "step": str(step)})
    write_json(tmp / "config.json", json.loads(cfg.to_json()))
    write_json(tmp / "lineage.json", lineage)
    write_json(tmp / "state.json", dict(state, step=step))
    for f in tmp.iterdir():  # make the bytes durable before the rename publishes them
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def prune(run: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never the best one."""
    run = Path(run)
    best = read_best(run)
    ckpts = list_checkpoints(run)
    for p in ckpts[:-keep_last] if keep_last > 0 else []:
        if best is None or p.name != best.name:
            shutil.rmtree(p, ignore_errors=True)


def read_best(run: str | Path) -> Path | None:
    f = Path(run) / "best.json"
    if not f.exists():
        return None
    return Path(run) / CKPT_DIR / json.loads(f.read_text())["checkpoint"]


def write_best(run: str | Path, ckpt: Path, metric: float, step: int) -> None:
    write_json(Path(run) / "best.json", {"checkpoint": ckpt.name, "step": step, "val_loss": metric})


def resolve(run_or_ckpt: str | Path, which: str = "best") -> Path:
    """A checkpoint folder from a run folder ("best" if recorded, else the latest) or a checkpoint folder."""
    p = Path(run_or_ckpt)
    if (p / "model.safetensors").exists():
        return p
    if which == "best":
        b = read_best(p)
        if b is not None and b.exists():
            return b
    ckpts = list_checkpoints(p)
    if not ckpts:
        raise FileNotFoundError(f"{p}: no checkpoint found (expected {p}/{CKPT_DIR}/step_*/model.safetensors); "
                                f"train one with `egoworld train DATA --out {p}`")
    return ckpts[-1]


def load_model(ckpt: str | Path, which: str = "best") -> tuple[torch.nn.Module, Config]:
    """Rebuild a ``WorldModel`` from a checkpoint (or a run folder) — config.json + model.safetensors."""
    from egoworld.model.world_model import WorldModel

    d = resolve(ckpt, which)
    cfg = Config.from_dict(json.loads((d / "config.json").read_text()))
    model = WorldModel(cfg)
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    model.eval()
    return model, cfg


def load_training_state(ckpt: Path, model: torch.nn.Module, opt: Adam) -> dict[str, Any]:
    """Restore weights and optimizer moments in place; return the checkpoint's state.json."""
    model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
    opt.load_tensors(load_file(str(ckpt / "optimizer.safetensors")))
    return json.loads((ckpt / "state.json").read_text())
