"""Frames per second and step latency of `egoworld play`, at 64² and 128², the dream alone and beside its simulator twin.

    python bench/play.py [--data STORE] [--sizes 64,128] [--steps 60] [--threads 1] [--run RUN]

For each model size and each world (the dream alone; the dream + the simulator twin) it times:
``Game.step`` (one frame: the control from the held keys, the prior step, the decoded frame, the
heads, the twin's MuJoCo step + render + the model's filter of its frame, PNG encoding) and frames
per second end to end — a WebSocket client asking for step after step from the real app on a
localhost port, as the page does (its fps cap lifted). The baseline, measured in the same run, is
the bare model: one prior step + one decode of the same model, the least any dream frame costs;
the ratio says what the game adds. Goal: ≥ 20 frames/s and ≤ 50 ms per step for the dream at 128².

A randomly initialised tiny model of each size times the same as a trained one; the starts come
from ``--data`` (a store of simulated sessions on disk, so the twin can be restored) or from a
small store captured here (2 push sessions × 6 s at 128², a minute or two).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from egoworld.actions import control_to_action
from egoworld.imagine.dream import load_starts
from egoworld.model import WorldModel, preset
from egoworld.play.game import Game, World

GOAL_FPS, GOAL_MS = 20.0, 50.0
# what a player's hands do: turn and reach, then the other way (cycled every 10 frames)
PATTERN = [{"ArrowLeft", "KeyW"}, {"ArrowRight", "KeyI", "KeyD"}, {"ArrowUp", "KeyS"}, set()]


def capture_store(root: Path) -> Path:
    from egoworld.capture.sim.batch import capture_many
    from egoworld.capture.sim.record import plan_sessions
    from egoworld.dataset.build import build_store
    from egoworld.session import find_sessions
    from egoworld.sync.batch import run_batch

    configs = plan_sessions(2, places=2, people=2, tasks=["push"], seed=5, seconds=6.0, width=128, height=128, start="table")
    _, failed = capture_many(root, configs, workers=2, progress=False)
    if failed:
        raise SystemExit(f"capture failed: {failed}")
    run_batch(find_sessions(root), root / "aligned", workers=2)
    build_store(root, workers=2)
    return root / "episodes"


def make_world(size: int, store: Path, run: str | None, twin: bool) -> World:
    if run:
        from egoworld import runs

        model, _ = runs.load_model(run)
        ckpt = runs.resolve(run)
    else:
        torch.manual_seed(0)
        model, ckpt = WorldModel(preset("tiny", image_size=size)).eval(), Path("random-init")
    starts = load_starts(model, store, "push", n=2, context=model.cfg.context, split="all")
    return World(model, Path(run or "random-init"), ckpt, store, "push", starts, np.zeros((len(starts), 2)), twin,
                 Path(tempfile.gettempdir()) / "egoworld-bench-play")


@torch.no_grad()
def bare_model_ms(world: World, steps: int) -> float:
    """The baseline: one prior step and one decode, nothing else (no heads, no encoding, no env)."""
    m = world.model
    state = world.starts.state([0])
    ref = world.starts.ref(m, [0])
    c = np.zeros(20)
    c[4], c[8] = -0.04, 0.01
    a = m.norm_action(torch.from_numpy(control_to_action(c, 1.0).astype(np.float32))[None])
    rot = m.head_rotation(torch.from_numpy(control_to_action(c, 1.0).astype(np.float32))[None, None])
    times = []
    for k in range(steps + 5):
        t0 = time.perf_counter()
        state = m.rssm.img_step(state, a, None, sample=False)
        m.decode(state.feat()[:, None], ref, rot)
        if k >= 5:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def game_steps(world: World, steps: int) -> list[float]:
    """Seconds per ``Game.step`` (after 5 warm-up steps), keys cycling through ``PATTERN``."""
    game = Game(world)
    game.reset(0)
    times = []
    for k in range(steps + 5):
        game.held = set(PATTERN[(k // 10) % len(PATTERN)])
        t0 = time.perf_counter()
        game.step()
        if k >= 5:
            times.append(time.perf_counter() - t0)
    game.close()
    return times


def websocket_fps(world: World, steps: int) -> float:
    """Frames per second a page gets: the real app on a localhost port, step after step over its WebSocket."""
    import uvicorn
    from websockets.sync.client import connect

    from egoworld.play.server import bind, make_app

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(world), log_level="warning", lifespan="off"))
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            while json.loads(ws.recv()).get("type") != "frame":  # hello, then the start frame
                pass
            ws.send(json.dumps({"type": "key", "code": "ArrowLeft", "down": True}))
            for k in range(steps + 5):
                if k == 5:
                    t0 = time.perf_counter()
                ws.send('{"type": "step"}')
                while json.loads(ws.recv()).get("reply") != "step":
                    pass
            return steps / (time.perf_counter() - t0)
    finally:
        server.should_exit = True
        th.join(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None, help="a store of simulated sessions (default: capture a small one)")
    ap.add_argument("--run", default=None, help="a trained run (default: a randomly initialised tiny model per size)")
    ap.add_argument("--sizes", default="64,128")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: egoworld play's default)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(a.data) if a.data else capture_store(Path(tmp) / "data")
        sizes = [int(s) for s in a.sizes.split(",")] if not a.run else [0]
        print(f"{torch.get_num_threads()} torch thread(s); {a.steps} steps per row; model: "
              f"{a.run or 'tiny preset, random init'}; starts: push episodes of {store if a.data else 'a fresh 2-session store'}")
        print(f"{'size':>5} {'world':<12} {'step ms (median, p95)':>22} {'game fps':>9} {'WebSocket fps':>14} "
              f"{'bare model ms':>14} {'step / bare':>12}")
        rows = []
        for size in sizes:
            for twin in (False, True):
                world = make_world(size, store, a.run, twin)
                S = world.model.cfg.image_size
                bare = bare_model_ms(world, a.steps)
                t = np.asarray(game_steps(world, a.steps)) * 1e3
                fps = websocket_fps(world, a.steps)
                med, p95 = float(np.median(t)), float(np.percentile(t, 95))
                rows.append((S, twin, med, fps))
                print(f"{S:>4}² {'dream + sim' if twin else 'dream':<12} {med:>13.1f} ({p95:>5.1f}) {1e3 / med:>9.1f} "
                      f"{fps:>14.1f} {bare:>14.1f} {med / bare:>11.2f}x")
        for S, twin, med, fps in rows:
            if S == 128 and not twin:
                ok = fps >= GOAL_FPS and med <= GOAL_MS
                print(f"goal at 128², dream alone: ≥ {GOAL_FPS:.0f} frames/s and ≤ {GOAL_MS:.0f} ms per step — measured "
                      f"{fps:.1f} frames/s, {med:.1f} ms: {'met' if ok else 'missed'} (ratio goal ms / step ms {GOAL_MS / med:.2f}x)")


if __name__ == "__main__":
    main()
