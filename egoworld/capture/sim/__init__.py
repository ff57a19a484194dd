"""The embedded data source: a MuJoCo egocentric rig (head camera, two hands, scripted people).

MuJoCo renders off-screen; with no display we pick EGL before mujoco is first imported.

The same seed must give the same frames on any machine. Mesa's software rasteriser (llvmpipe)
compiles its shaders for the host CPU, and the instruction set it is allowed to use changes the
pixels (SSE4.1, AVX2 and AVX-512 code paths round differently), so before any GL context exists
we pin it to one code path every x86-64 CPU of the last fifteen years can run: SSE4.1 at 128-bit
vectors, rasterised on the calling thread. ``EGOWORLD_RENDER_NATIVE=1`` leaves llvmpipe to the
host's choice (faster on wide CPUs, not reproducible across machines).

The GL stack also reads memory it never wrote (a session's frames changed with the session rendered
before it in the same process, by up to 50 grey levels on the floor): glibc's ``M_PERTURB`` fills every
fresh heap block with one byte, so what such a read finds is the same in every process and on every
machine (Linux/glibc; elsewhere nothing is pinned).
"""
import ctypes
import os

RENDER_PIN = {
    "GALLIUM_OVERRIDE_CPU_CAPS": "sse4.1",  # no AVX/AVX2/FMA/AVX-512 code paths, whatever the CPU has
    "LP_NATIVE_VECTOR_WIDTH": "128",
    "LP_NUM_THREADS": "0",  # no rasteriser threads: nothing depends on the core count or scheduling
}

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
M_PERTURB = -6  # glibc mallopt parameter: fill allocated blocks with ~byte, freed ones with byte
PERTURB_BYTE = 0x55


def _pin_heap_fill() -> bool:
    """Turn on glibc's heap fill (module doc); False where there is no glibc."""
    try:
        return bool(ctypes.CDLL(None).mallopt(M_PERTURB, PERTURB_BYTE))
    except (OSError, AttributeError):
        return False


if os.environ.get("EGOWORLD_RENDER_NATIVE") != "1":
    os.environ.update(RENDER_PIN)
    HEAP_PINNED = _pin_heap_fill()
else:
    HEAP_PINNED = False
