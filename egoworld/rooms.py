"""The house's pipeline order, written once: a room imports only from itself and the rooms before it.

A *room* is a package under ``egoworld/`` (``capture``, ``sync`` …) or a top-level module
(``actions``, ``session`` …). Data flows left to right, so an import from a room further down the
order is a loop in the data flow: it makes a stage depend on what it feeds. The ground floor holds
what every stage shares, one definition each (the action, the body state, the raw session, the
HTML kit); the doors are the commands and apps built on the whole pipeline. ``tests/test_layout.py``
walks every import of every module (those inside functions too) and holds the code to this order.
"""
from __future__ import annotations

ROOMS: tuple[str, ...] = (
    # ground floor: shared kernels, one definition each
    "egoworld",  # the package itself (its version)
    "rooms",
    "_atomic",
    "determinism",
    "quat",
    "body",
    "actions",
    "state",
    "video",
    "html",
    "session",
    "cluster",
    # the pipeline, upstream to downstream
    "capture",
    "sync",
    "dataset",
    "audit",
    "model",
    "runs",  # a trained run: resolve, load, save weights (below train, which writes runs)
    "train",
    "imagine",
    "evaluate",
    "report",
    # the doors: commands and apps on top of the pipeline
    "inspect",
    "play",
    "view",
    "improve",
    "demo",
    "cli",
)


def room_of(module: str) -> str:
    """The room of a dotted module name: ``egoworld.audit.spec`` → ``audit``, ``egoworld`` → ``egoworld``."""
    parts = module.split(".")
    if parts[0] != "egoworld":
        raise ValueError(f"{module!r} is not an egoworld module")
    return parts[1] if len(parts) > 1 else "egoworld"


def may_import(importer: str, imported: str) -> bool:
    """Whether room ``importer`` may import from room ``imported`` (itself, or a room before it)."""
    return ROOMS.index(imported) <= ROOMS.index(importer)
