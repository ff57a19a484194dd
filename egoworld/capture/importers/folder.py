"""``egoworld import camera|egodex FOLDER --out OUT``: every recording in a folder, one session each.

A capture programme hands over folders of clips, not single files. Each recording becomes
``OUT/<file stem>`` (written atomically by its importer); a recording that cannot be imported is
reported with the file and the problem and left out, and the others are still written. With
``--ray`` each recording is one Ray task (``egoworld.cluster``); FOLDER and OUT must then be on a
file system every node sees.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

FORMATS = ("camera", "egodex")  # one file (+ its sidecar) per recording; generic and aria take per-file options
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi")


def recordings(folder: Path, fmt: str) -> list[Path]:
    """The recordings in ``folder`` (not its sub-folders), sorted: videos; for egodex, those with an .hdf5 beside."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                   and not p.name.startswith("."))
    if fmt == "egodex":
        files = [p for p in files if p.with_suffix(".hdf5").exists()]
    return files


def import_one(fmt: str, src: Path, out: Path, options: dict[str, Any]) -> Path:
    """One recording → one session (the task of a folder import)."""
    if fmt == "camera":
        from egoworld.capture.importers.camera import import_camera

        return import_camera(src, out, **options)
    if fmt == "egodex":
        from egoworld.capture.importers.egodex import import_egodex

        return import_egodex(src, out, **options)
    raise ValueError(f"folder import supports {', '.join(FORMATS)}, not {fmt!r}")


def import_folder(fmt: str, folder: Path, out: Path, options: dict[str, Any],
                  ray: str | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Import every recording of ``folder`` into ``out/<stem>``; returns (written sessions, [(file, reason)])."""
    if fmt not in FORMATS:
        raise ValueError(f"a folder of recordings can be imported as {' or '.join(FORMATS)}; import {fmt} one recording at a time")
    files = recordings(folder, fmt)
    if not files:
        raise FileNotFoundError(f"{folder}: no recordings ({', '.join(VIDEO_SUFFIXES)}"
                                + (" with an .hdf5 beside" if fmt == "egodex" else "") + ")")
    jobs = [(fmt, f, Path(out) / f.stem, options) for f in files]
    done: list[Path] = []
    failed: list[tuple[str, str]] = []
    if ray is not None:
        from egoworld.cluster import map_tasks

        for o in map_tasks(import_one, jobs, [str(f) for f in files], ray):
            if o.ok:
                done.append(o.value)
            else:
                failed.append((o.label, f"{o.kind}: {o.error}"))
        return done, failed
    for job in jobs:
        try:
            done.append(import_one(*job))
        except Exception as e:  # noqa: BLE001 — one bad recording must not lose the others
            failed.append((str(job[1]), f"{type(e).__name__}: {e}"))
    return done, failed
