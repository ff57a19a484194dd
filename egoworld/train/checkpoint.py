"""Checkpoints as training writes and resumes them: the weights with the optimizer's state.

A checkpoint folder (``egoworld.runs`` describes the run folder and reads it) holds
``model.safetensors``, ``optimizer.safetensors``, ``config.json``, ``lineage.json`` and ``state.json``.
It is written under a temporary name and renamed into place, so it either exists complete or not at
all: a SIGKILL mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.model.config import Config
from egoworld.train.optim import Adam


def save_checkpoint(run: str | Path, step: int, model: torch.nn.Module, opt: Adam, cfg: Config,
                    lineage: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write checkpoint ``step`` atomically (temp folder, then rename) and return its folder."""
    final = runs.checkpoint_dir(run, step)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = {"format": "pt", "step": str(step)}
    runs.save_weights(tmp / runs.WEIGHTS, model, meta)
    runs.save_weights(tmp / "optimizer.safetensors", opt.tensors(), meta)
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


def load_training_state(ckpt: Path, model: torch.nn.Module, opt: Adam) -> dict[str, Any]:
    """Restore weights and optimizer moments in place; return the checkpoint's state.json."""
    model.load_state_dict(runs.load_weights(ckpt / runs.WEIGHTS))
    opt.load_tensors(runs.load_weights(ckpt / "optimizer.safetensors"))
    return json.loads((ckpt / "state.json").read_text())
