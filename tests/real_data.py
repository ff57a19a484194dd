"""Where the real recordings are: ``../shared/real`` beside the project (never in git).

``EGOWORLD_REAL_DATA`` points elsewhere (a checkout that is not beside ``shared/``). A test that
needs a file that is not there skips, saying which file and why: CI's clean clone may not have it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL = Path(os.environ.get("EGOWORLD_REAL_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "real")


def real_file(rel: str) -> Path:
    """``REAL/rel``, or skip the test (the real recordings are not in this checkout)."""
    p = REAL / rel
    if not p.exists():
        pytest.skip(f"real recording {rel} not found under {REAL} (set EGOWORLD_REAL_DATA or place shared/real beside "
                    "the project)")
    return p
