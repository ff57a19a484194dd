"""The keyboard as a 20-D control: which key moves which column of ``egoworld.actions``' control.

Why here and not in the page: the page only reports which keys are down; the control is built in
Python from this one table, which is also sent to the page to print its help. Directions are in
the head camera's frame (OpenCV axes: x right, y down, z forward — the frame the action's head and
wrist deltas are expressed in), so "forward" always means where the person looks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from egoworld.actions import CONTROL_DIM, clip_control

HEAD_TURN = 0.04  # rad per frame held (≈ 70°/s at 30 fps); the control allows 0.15
WRIST_STEP = 0.01  # m per frame held (0.3 m/s at 30 fps); the control allows 0.06
GRIP_COLUMNS = (12, 19)  # left, right grip in the control


@dataclass(frozen=True)
class Key:
    """One key: ``code`` is the browser's ``KeyboardEvent.code`` (layout-independent).

    kind: ``hold`` adds ``sign`` × its step to control ``column`` while held; ``grip`` toggles a hand's
    grip (``column``) between open and closed; ``command`` is done by the server (restart, new start,
    planner, save); ``page`` is done by the page alone (pause, single step).
    """

    code: str
    label: str
    what: str
    kind: str
    column: int = -1
    sign: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _hold(code: str, label: str, what: str, column: int, sign: float) -> Key:
    return Key(code, label, what, "hold", column, sign)


KEYS: tuple[Key, ...] = (
    # head turn: rotation about the camera's y (yaw: +y turns toward +x, right) and x (pitch: +x looks up)
    _hold("ArrowLeft", "←", "head: turn left", 4, -1), _hold("ArrowRight", "→", "head: turn right", 4, +1),
    _hold("ArrowUp", "↑", "head: look up", 3, +1), _hold("ArrowDown", "↓", "head: look down", 3, -1),
    # left wrist: translation columns 6 (x), 7 (y, down), 8 (z, forward)
    _hold("KeyW", "W", "left wrist: forward", 8, +1), _hold("KeyS", "S", "left wrist: back", 8, -1),
    _hold("KeyA", "A", "left wrist: left", 6, -1), _hold("KeyD", "D", "left wrist: right", 6, +1),
    _hold("KeyR", "R", "left wrist: up", 7, -1), _hold("KeyF", "F", "left wrist: down", 7, +1),
    Key("KeyQ", "Q", "left grip: close / open", "grip", 12),
    # right wrist: columns 13, 14, 15
    _hold("KeyI", "I", "right wrist: forward", 15, +1), _hold("KeyK", "K", "right wrist: back", 15, -1),
    _hold("KeyJ", "J", "right wrist: left", 13, -1), _hold("KeyL", "L", "right wrist: right", 13, +1),
    _hold("KeyY", "Y", "right wrist: up", 14, -1), _hold("KeyH", "H", "right wrist: down", 14, +1),
    Key("KeyU", "U", "right grip: close / open", "grip", 19),
    Key("Backspace", "⌫", "restart this start", "command"),
    Key("KeyN", "N", "new real start", "command"),
    Key("KeyP", "P", "hand over to the planner / take back", "command"),
    Key("KeyX", "X", "save the episode", "command"),
    Key("Space", "space", "pause / run", "page"),
    Key("Period", ".", "one step (paused)", "page"),
)
BY_CODE = {k.code: k for k in KEYS}
COMMANDS = {"Backspace": "restart", "KeyN": "new", "KeyP": "planner", "KeyX": "save"}


def step_of(column: int) -> float:
    """Per-frame step of a held key on ``column``: head rotations turn, wrist translations move."""
    return HEAD_TURN if column < 6 else WRIST_STEP


def control_from_keys(held: set[str] | frozenset[str], grips: np.ndarray) -> np.ndarray:
    """The 20-D control for the keys held now and the current grips (2,): opposite keys cancel."""
    c = np.zeros(CONTROL_DIM)
    for code in held:
        k = BY_CODE.get(code)
        if k is not None and k.kind == "hold":
            c[k.column] += k.sign * step_of(k.column)
    c[list(GRIP_COLUMNS)] = grips
    return clip_control(c)


def toggle_grip(code: str, grips: np.ndarray) -> np.ndarray:
    """Grips (2,) after a grip key: a closed hand (≥ 0.5) opens, an open one closes."""
    k = BY_CODE[code]
    side = GRIP_COLUMNS.index(k.column)
    out = np.asarray(grips, dtype=np.float64).copy()
    out[side] = 0.0 if out[side] >= 0.5 else 1.0
    return out
