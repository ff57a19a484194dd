"""Same inputs, same bytes: the process-wide setting that libraries reading memory they never wrote need.

x264 and the GL stack (Mesa's llvmpipe) read heap memory they did not initialise: the same frames encoded
to different bytes (and, decoded, different pixels) depending on what the process had allocated and freed
before — a simulated session's video changed with the session rendered before it in the same worker, a
re-encoded real clip with whatever ran earlier in the process. glibc's ``M_PERTURB`` fills every block
``malloc`` hands out with one byte, so what such a read finds is the same in every process and on every
machine. Linux/glibc only; elsewhere nothing is set (and such reads stay as the platform leaves them).
The simulator turns it on when it loads (the GL stack's reads come from memory allocated all along the
capture) and ``VideoWriter`` before its encoder exists; a process that only reads video or trains keeps
glibc's default (filling every block costs time on those paths).
"""
from __future__ import annotations

import ctypes
import os

M_PERTURB = -6  # glibc mallopt parameter: allocated blocks are filled with ~byte, freed ones with byte
PERTURB_BYTE = 0x55


def fill_heap() -> bool:
    """Turn on glibc's heap fill for this process (module doc); False where there is no glibc or when
    ``EGOWORLD_RENDER_NATIVE=1`` asks for the host's own, faster and not reproducible, behaviour."""
    if os.environ.get("EGOWORLD_RENDER_NATIVE") == "1":
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(M_PERTURB, PERTURB_BYTE))
    except (OSError, AttributeError):
        return False

