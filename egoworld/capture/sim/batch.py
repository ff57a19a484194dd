"""Capture many sessions, in parallel processes, with a progress bar."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from egoworld.capture.sim.record import SessionConfig, capture_session


def capture_many(out: str | Path, configs: list[SessionConfig], workers: int = 1, progress: bool = True) -> tuple[list[Path], list[tuple[str, str]]]:
    """Capture every config into ``out``; returns (written paths, [(session_id, error)])."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    failed: list[tuple[str, str]] = []
    bar = tqdm(total=len(configs), desc="capture sim", unit="session", disable=not progress)
    if workers <= 1:
        for cfg in configs:
            try:
                done.append(capture_session(out, cfg))
            except Exception as e:  # one broken session must not lose the others
                failed.append((cfg.session_id, f"{type(e).__name__}: {e}"))
            bar.update()
    else:
        # spawn: each worker gets its own OpenGL (EGL) context, never a forked one
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(capture_session, out, cfg): cfg for cfg in configs}
            for fut in as_completed(futures):
                try:
                    done.append(fut.result())
                except Exception as e:
                    failed.append((futures[fut].session_id, f"{type(e).__name__}: {e}"))
                bar.update()
    bar.close()
    return sorted(done), failed
