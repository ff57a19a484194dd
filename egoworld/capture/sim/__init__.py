"""The embedded data source: a MuJoCo egocentric rig (head camera, two hands, scripted people).

MuJoCo renders off-screen; with no display we pick EGL before mujoco is first imported.

The same seed must give the same frames on any machine. Mesa's software rasteriser (llvmpipe)
compiles its shaders for the host CPU, and the instruction set it is allowed to use changes the
pixels (SSE4.1, AVX2 and AVX-512 code paths round differently), so before any GL context exists
we pin it to one code path every x86-64 CPU of the last fifteen years can run: SSE4.1 at 128-bit
vectors, rasterised on the calling thread. ``EGOWORLD_RENDER_NATIVE=1`` leaves llvmpipe to the
host's choice (faster on wide CPUs, not reproducible across machines).

The encoder and the GL stack also read heap memory they never wrote; ``egoworld.determinism`` fills
the heap before either runs (a session's frames changed with the session rendered before it in the
same process, by up to 50 grey levels).
"""
import os

from egoworld.determinism import fill_heap

RENDER_PIN = {
    "GALLIUM_OVERRIDE_CPU_CAPS": "sse4.1",  # no AVX/AVX2/FMA/AVX-512 code paths, whatever the CPU has
    "LP_NATIVE_VECTOR_WIDTH": "128",
    "LP_NUM_THREADS": "0",  # no rasteriser threads: nothing depends on the core count or scheduling
}

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
if os.environ.get("EGOWORLD_RENDER_NATIVE") != "1":
    os.environ.update(RENDER_PIN)
fill_heap()  # before any GL context exists (egoworld.determinism; a no-op under EGOWORLD_RENDER_NATIVE=1)
