"""Sync: clock offset + drift of every motion clock against the video, and the aligned episode.

``sync_session(path, out)`` does one session (see pipeline.py); ``sync_folder`` (batch.py) a
folder of them. Method, evidence per stream, output columns and limits: docs/sync.md.

Exports load lazily (module ``__getattr__``), so ``egoworld.sync.cli`` can register its command
without importing OpenCV and SciPy.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"ClockFit": "egoworld.sync.estimate", "Limits": "egoworld.sync.estimate", "sync_session": "egoworld.sync.pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'egoworld.sync' has no attribute {name!r}")


__all__ = sorted(_LAZY)
