"""Train / val / held-out splits by episode: held-out places or people, then a val fraction.

Held-out episodes (a place or a person never seen in training) measure the coverage gap; val is a
deterministic fraction of the rest, picked by a hash of the session id (not by the loader seed),
so the same episode stays in val across runs, seeds and machines.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

KINDS = ("train", "val", "heldout", "all")


@dataclass(frozen=True)
class Split:
    """Which episodes a loader sees.

    ``kind``: train | val | heldout | all. ``held_out_places`` / ``held_out_people``: ids whose
    episodes go to heldout only. ``val_fraction``: share of the non-held-out episodes in val (at
    least one when there are two or more and the fraction is > 0).
    """

    kind: str = "train"
    held_out_places: tuple[str, ...] = field(default_factory=tuple)
    held_out_people: tuple[str, ...] = field(default_factory=tuple)
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Split.kind must be one of {KINDS}, got {self.kind!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        object.__setattr__(self, "held_out_places", tuple(self.held_out_places))
        object.__setattr__(self, "held_out_people", tuple(self.held_out_people))

    @classmethod
    def from_json(cls, kind: str, d: dict) -> Split:
        return cls(kind, tuple(d.get("held_out_places", ())), tuple(d.get("held_out_people", ())),
                   float(d.get("val_fraction", 0.1)))

    def to_json(self) -> dict:
        return {"kind": self.kind, "held_out_places": list(self.held_out_places),
                "held_out_people": list(self.held_out_people), "val_fraction": self.val_fraction}


def _rank(session_id: str) -> str:
    return hashlib.sha1(session_id.encode()).hexdigest()


def assign(episodes: Sequence[dict], split: Split) -> dict[str, list[int]]:
    """Episode positions per part: ``{"train": [...], "val": [...], "heldout": [...]}``.

    ``episodes`` are dicts with ``session_id``, ``place``, ``person`` (the rows of meta/episodes).
    """
    held, rest = [], []
    for i, e in enumerate(episodes):
        (held if e["place"] in split.held_out_places or e["person"] in split.held_out_people else rest).append(i)
    n_val = 0
    if split.val_fraction > 0 and len(rest) >= 2:
        n_val = min(len(rest) - 1, max(1, round(split.val_fraction * len(rest))))
    by_hash = sorted(rest, key=lambda i: _rank(episodes[i]["session_id"]))
    val = sorted(by_hash[:n_val])
    train = sorted(by_hash[n_val:])
    return {"train": train, "val": val, "heldout": sorted(held)}


def select(episodes: Sequence[dict], split: Split) -> list[int]:
    if split.kind == "all":
        return list(range(len(episodes)))
    return assign(episodes, split)[split.kind]


def default_splits(sessions: Iterable[dict]) -> dict:
    """The store's default split: hold out the last place (sorted id) when there are ≥ 3 places."""
    sessions = list(sessions)
    places = sorted({s["place"] for s in sessions})
    return {"held_out_places": places[-1:] if len(places) >= 3 else [], "held_out_people": [], "val_fraction": 0.1,
            "why": "the last place (by id) is never trained on, to measure the held-out-place gap; "
                   "val is 10% of the rest, chosen by a hash of the session id"}
