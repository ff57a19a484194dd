"""The one definition of a trained run: find its checkpoints, load its model, save and load weights.

Layout of a run folder (written by ``egoworld train``)::

    RUN/config.json                 the full config (also inside every checkpoint)
    RUN/lineage.json                what it was trained on (also inside every checkpoint)
    RUN/metrics.csv                 one row per logged step (train and val)
    RUN/data_order.csv              the clip indices of every global batch
    RUN/best.json                   which checkpoint has the lowest validation loss
    RUN/checkpoints/step_00000100/  model.safetensors, optimizer.safetensors, config.json,
                                    lineage.json, state.json

Everything that reads a run — evaluation, imagination, planning, play, the viewer, the interaction
loop — goes through here, so "which checkpoint", "does it still load" and "which bytes was this made
with" have one answer. Training writes checkpoints with their optimizer state
(``egoworld.train.checkpoint``); weights are safetensors, never pickle. Torch is imported only by the
functions that need it, so finding a run costs no torch import.
"""
from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from egoworld._atomic import atomic_path, write_json
from egoworld.session import file_sha256

if TYPE_CHECKING:
    import torch

    from egoworld.model import Config, WorldModel

CKPT_DIR = "checkpoints"
WEIGHTS = "model.safetensors"
DECODER = "decoder."  # the prefix of the decoder's weights: the one part that planning never runs


class RunError(ValueError):
    """A run or checkpoint file that cannot be read as asked; the message names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)


# ---------------------------------------------------------------- finding checkpoints


def checkpoint_dir(run: str | Path, step: int) -> Path:
    """Where checkpoint ``step`` of a run lives."""
    return Path(run) / CKPT_DIR / f"step_{step:08d}"


def list_checkpoints(run: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are ignored)."""
    d = Path(run) / CKPT_DIR
    if not d.exists():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").exists())


def read_best(run: str | Path) -> Path | None:
    """The checkpoint ``best.json`` names (lowest validation loss), or None when there is no such record."""
    f = Path(run) / "best.json"
    if not f.exists():
        return None
    return Path(run) / CKPT_DIR / _read_json(f)["checkpoint"]


def write_best(run: str | Path, ckpt: Path, metric: float, step: int) -> None:
    """Record ``ckpt`` as the run's best checkpoint (``best.json``), with its validation loss and step."""
    write_json(Path(run) / "best.json", {"checkpoint": ckpt.name, "step": step, "val_loss": metric})


def prune(run: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never the best one."""
    best = read_best(run)
    ckpts = list_checkpoints(run)
    for p in ckpts[:-keep_last] if keep_last > 0 else []:
        if best is None or p.name != best.name:
            shutil.rmtree(p, ignore_errors=True)


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder or one of its checkpoints (what ``resolve`` accepts)."""
    p = Path(path)
    return (p / "config.json").exists() and ((p / CKPT_DIR).is_dir() or (p / WEIGHTS).exists())


def resolve(run_or_ckpt: str | Path, which: str = "best") -> Path:
    """A checkpoint folder from a run folder ("best" if recorded, else the latest) or a checkpoint folder."""
    p = Path(run_or_ckpt)
    if (p / WEIGHTS).exists():
        return p
    if which == "best":
        b = read_best(p)
        if b is not None and b.exists():
            return b
    ckpts = list_checkpoints(p)
    if not ckpts:
        raise FileNotFoundError(f"{p}: no checkpoint found (expected {p}/{CKPT_DIR}/step_*/{WEIGHTS}); "
                                f"train one with `egoworld train DATA --out {p}`")
    return ckpts[-1]


# ---------------------------------------------------------------- what a checkpoint says about itself


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunError(path, f"not valid JSON ({e}); the run is damaged — train it again or pick another checkpoint") from None


def read_config(run_or_ckpt: str | Path) -> Config:
    """The model config a run or checkpoint was trained with (its ``config.json``)."""
    from egoworld.model import Config

    p = Path(run_or_ckpt)
    f = p / "config.json"
    if not f.exists():
        raise FileNotFoundError(f"{f}: missing — a run folder and each of its checkpoints hold the config they trained with")
    return Config.from_dict(_read_json(f))


def lineage_file(run_or_ckpt: str | Path) -> Path | None:
    """The lineage.json of a checkpoint (the resolved one of a run), else the run folder's; None when neither exists."""
    p = Path(run_or_ckpt)
    try:
        ckpt: Path | None = resolve(p)
    except FileNotFoundError:
        ckpt = None
    for d in (ckpt, p, p.parent.parent):  # p.parent.parent: the run of a checkpoint folder
        if d is not None and (d / "lineage.json").exists():
            return d / "lineage.json"
    return None


def read_lineage(run_or_ckpt: str | Path) -> dict[str, Any]:
    """What a run was trained on (``lineage.json``: data, episodes, consents, code); {} when it has none."""
    f = lineage_file(run_or_ckpt)
    return _read_json(f) if f is not None else {}


def checkpoint_step(ckpt: Path) -> int | None:
    """The training step a checkpoint was saved at (its ``state.json``); None for a bare weights folder."""
    f = Path(ckpt) / "state.json"
    return _read_json(f).get("step") if f.exists() else None


def read_metrics(run: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """A run's ``metrics.csv`` → {split: {column: values}} (empty cells → NaN); {} before its first log."""
    path = Path(run) / "metrics.csv"
    out: dict[str, dict[str, list]] = {}
    if not path.exists():
        return {}
    with path.open() as f:
        for row in csv.DictReader(f):
            d = out.setdefault(row["split"], {})
            for k, v in row.items():
                if k != "split":
                    d.setdefault(k, []).append(float(v) if v not in ("", None) else np.nan)
    return {s: {k: np.asarray(v) for k, v in d.items()} for s, d in out.items()}


def model_sha256(ckpt: Path) -> str:
    """``sha256:<hex>`` of a checkpoint's weights: which bytes a result was made with."""
    return file_sha256(Path(ckpt) / WEIGHTS)


def provenance(run: str | Path, ckpt: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What anything generated by a model owes to it: the model's record (run, checkpoint, weights' sha256,
    step, its training lineage but the episodes) and its training episodes (role ``model_training``), whose
    consents every generated frame depends on."""
    f = Path(ckpt) / "lineage.json"
    lineage = _read_json(f) if f.exists() else {}
    record = {"run": str(run), "checkpoint": str(ckpt), "model_sha256": model_sha256(ckpt), "step": checkpoint_step(ckpt),
              "trained_on": {k: v for k, v in lineage.items() if k != "episodes"}}
    return record, [dict(e, role="model_training") for e in lineage.get("episodes", []) if isinstance(e, dict)]


# ---------------------------------------------------------------- weights


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The named tensors of a safetensors file; a missing or unreadable file is an error naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing — the checkpoint is incomplete; train again or pick another checkpoint")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise RunError(path, f"not a readable safetensors file ({e}); the checkpoint is damaged — train again or "
                             "pick another checkpoint") from None


def save_weights(path: str | Path, weights: Mapping[str, torch.Tensor] | torch.nn.Module,
                 metadata: dict[str, str] | None = None) -> Path:
    """Write named tensors (or a module's state) as safetensors, atomically (temporary file, then rename)."""
    from safetensors.torch import save

    if hasattr(weights, "state_dict"):
        weights = weights.state_dict()
    tensors = {k: v.detach().contiguous().clone() for k, v in weights.items()}
    with atomic_path(path, ".safetensors") as tmp:
        tmp.write_bytes(save(tensors, metadata=metadata or {"format": "pt"}))
    return Path(path)


# ---------------------------------------------------------------- the model


def load_model(run_or_ckpt: str | Path, which: str = "best", decoder: bool = True) -> tuple[WorldModel, Config]:
    """Rebuild a run's ``WorldModel`` (config.json + model.safetensors), in eval mode, and its config.

    Every weight must match the model this code builds. ``decoder=False`` is for callers that never
    decode (planning, filtering): a checkpoint whose decoder no longer matches the code (an older run
    after a decoder change) still loads, its decoder left as built (and unused); anything beyond the
    decoder must still match.
    """
    from egoworld.model import WorldModel

    d = resolve(run_or_ckpt, which)
    cfg = read_config(d)
    weights = load_weights(d / WEIGHTS)
    model = WorldModel(cfg)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        if decoder:
            raise RuntimeError(f"{d / WEIGHTS}: the weights do not match this egoworld's model ({_oneline(e)})") from None
        model = WorldModel(cfg)  # afresh: the decoder as built, none of the stored one
        try:
            missing, unexpected = model.load_state_dict({k: v for k, v in weights.items() if not k.startswith(DECODER)},
                                                        strict=False)
        except RuntimeError as e:  # a weight beyond the decoder with another shape
            raise RuntimeError(f"{d / WEIGHTS}: the weights do not match this egoworld's model beyond the decoder "
                               f"({_oneline(e)})") from None
        bad = [k for k in list(missing) + list(unexpected) if not k.startswith(DECODER)]
        if bad:
            raise RuntimeError(f"{d / WEIGHTS}: the weights do not match this egoworld's model beyond the decoder: "
                               f"{bad[:8]}") from None
    return model.eval(), cfg


def _oneline(e: Exception, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " …"
