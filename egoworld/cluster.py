"""One task per session on a Ray cluster: the ``--ray`` path of capture, import, sync, episodes and audit.

Why Ray and not a pool of our own: past one machine, scheduling, retries after a lost worker or
node, and moving small results back are what an existing engine does well. Ray is an optional
extra (``pip install -e ".[scale]"``) and is imported here only, inside the functions: without
``--ray`` nothing here runs and ``ray`` never enters ``sys.modules``.

The contract for a task: it reads its inputs from, and writes its outputs to, a folder every node
sees at the same path (a shared file system), atomically (``egoworld._atomic``); it returns a
small JSON-able value. A session whose task fails — a bad file, a bug, a worker or node that died
after Ray's retries — comes back as an ``Outcome`` with the reason; the run goes on without it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

RAY_HELP = ("Run one Ray task per session on the cluster at ADDRESS (auto, HOST:PORT, ray://HOST:10001); bare --ray: "
            "Ray's default (RAY_ADDRESS, a cluster started here with `ray start`, else a local one). Needs the scale extra.")
RETRIES = 2  # re-runs of a task whose worker or node died (not of one that raised: that is the data)


class ClusterError(RuntimeError):
    """Ray is missing, or the cluster cannot be reached: says what to install or check."""


@dataclass
class Outcome:
    """What one task gave: its value, or the error (``kind``: the exception's class name; ``cluster``
    when the worker or node was lost)."""

    label: str
    value: Any = None
    error: str | None = None
    kind: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); empty or None:
    Ray's default (``RAY_ADDRESS``, else a cluster started on this machine with ``ray start``, else a new
    local one). A process that already called ``ray.init`` keeps its cluster."""
    try:
        import ray
    except ImportError as e:
        raise ClusterError('--ray needs Ray: pip install -e ".[scale]" (or pip install ray)') from e
    if ray.is_initialized():
        return
    try:
        ray.init(address=address or None, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"cannot join the Ray cluster at {address or 'the default address'}: {e}") from e


def _one_thread() -> None:
    """One thread per task, as the local pools do: N tasks use N cores and no more."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)


def _run(fn: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    """The task body: the error travels back as text (some exceptions do not survive pickling)."""
    _one_thread()
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 — a failed session is reported, never a lost run
        return "error", (type(e).__name__, str(e))


def map_tasks(fn: Callable[..., Any], jobs: Sequence[tuple], labels: Sequence[str], address: str | None = None,
              on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``fn(*job)`` for every job as one Ray task (1 CPU each); outcomes in the order of ``jobs``.

    ``fn`` must be a module-level function (workers import it by name). ``on_done`` sees each
    outcome as it arrives (progress)."""
    connect(address)
    import ray

    task = ray.remote(num_cpus=1, max_retries=RETRIES)(_run)
    refs = [task.remote(fn, tuple(job)) for job in jobs]
    where = {ref: k for k, ref in enumerate(refs)}
    out: list[Outcome | None] = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            k = where[ref]
            try:
                status, value = ray.get(ref)
            except ray.exceptions.RayError as e:  # the worker or its node died, after the retries
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                out[k] = Outcome(labels[k], error=f"lost on the cluster ({type(e).__name__}: {first})", kind="cluster")
            else:
                out[k] = Outcome(labels[k], value) if status == "ok" else Outcome(labels[k], error=value[1], kind=value[0])
            if on_done:
                on_done(out[k])
    return [o for o in out if o is not None]


__all__ = ["ClusterError", "Outcome", "connect", "map_tasks"]
