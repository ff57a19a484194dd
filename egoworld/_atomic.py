"""Atomic writes: write to a temporary name beside the target, then rename.

A crash mid-write leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_parquet(path: str | Path, table: pa.Table, compression: str = "zstd", use_dictionary: bool = True) -> None:
    """Write a parquet file deterministically (same table → same bytes) and atomically."""
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp, compression=compression, use_dictionary=use_dictionary, write_statistics=True)


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNED = re.compile(r"^(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[^.]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(target: str | Path) -> list[Path]:
    """Remove the temporary folders of ``target`` left by a process that died (kill -9, power loss).

    A temporary folder's name carries its host and process id; only those of this host whose
    process is gone are removed (another host's build on a shared disk, or a live one, is left
    alone). A ``.old`` copy is removed only while ``target`` itself exists."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    prefix = f".{target.name}."
    for p in target.parent.iterdir():
        if not p.name.startswith(prefix) or not p.is_dir():
            continue
        rest = p.name[len(prefix):]
        m = _OWNED.match(rest)
        stale = (m is not None and m["host"] == _HOST and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))) \
            or (rest == "old" and target.exists())
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def temp_dir_beside(target: str | Path) -> Path:
    """An empty folder next to ``target`` (same file system, so the final rename is atomic); the
    leftovers of earlier runs that were killed are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_HOST}-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700
    return tmp


def replace_dir(tmp: Path, target: str | Path) -> None:
    """Move a finished folder onto ``target``; an existing ``target`` is replaced only now."""
    target = Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


@contextmanager
def atomic_dir(target: str | Path, check: Callable[[Path], Any] | None = None) -> Iterator[Path]:
    """Build a folder under a temporary name; ``check`` it, then swap it onto ``target``.

    On any error (in the body or the check) the temporary folder is removed and ``target`` is untouched.
    """
    tmp = temp_dir_beside(target)
    try:
        yield tmp
        if check is not None:
            check(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
