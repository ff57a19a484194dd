"""The house plan holds: no room imports from a room downstream of it, ``capture/`` (and the other
torch-free rooms) never reach torch, and ``model/`` never touches files.

Static: every module under egoworld/ is parsed with ``ast`` and every import is followed — module
level, inside functions, relative, ``from egoworld import quat``, and module names handed to
``importlib`` as strings — against the one pipeline order in ``egoworld/rooms.py``.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import egoworld
from egoworld.rooms import ROOMS, may_import, room_of

PACKAGE = Path(egoworld.__file__).resolve().parent
TORCH_FREE = ("capture", "sync", "audit")  # and whatever they import, transitively
FILE_MODULES = {"os", "io", "pathlib", "shutil", "tempfile", "glob", "pickle", "safetensors", "pyarrow", "av", "cv2",
                "h5py", "egoworld._atomic", "egoworld.session", "egoworld.video", "egoworld.runs"}
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "save", "load", "savez", "tofile", "fromfile"}
MODULE_STRING = re.compile(r"egoworld(\.\w+)+")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (a module name, as written or resolved)
    line: int


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in one file, resolved to absolute module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:  # `from egoworld import quat` imports the module egoworld.quat
                sub = f"{mod}.{a.name}"
                out.append(Import(name, sub if sub in known else mod, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value) \
                and node.value in known:  # a module loaded by name (importlib.import_module)
            out.append(Import(name, node.value, node.lineno))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_every_room_has_a_place_in_the_order(graph: dict[str, list[Import]]) -> None:
    missing = sorted({room_of(m) for m in graph} - set(ROOMS))
    assert not missing, f"rooms with no place in egoworld/rooms.py's ROOMS: {missing}"
    assert len(set(ROOMS)) == len(ROOMS), "a room is listed twice in ROOMS"
    assert {"capture", "sync", "dataset", "audit", "model", "train"} <= {room_of(m) for m in graph}


def test_no_room_imports_downstream(graph: dict[str, list[Import]]) -> None:
    bad = []
    for name, imps in graph.items():
        for i in imps:
            if i.target == "egoworld" or i.target.startswith("egoworld."):
                src, dst = room_of(name), room_of(i.target)
                if not may_import(src, dst):
                    bad.append(f"{name}:{i.line} imports {i.target} ({src} → {dst}, downstream of it)")
    assert not bad, "imports against the pipeline order (egoworld/rooms.py):\n" + "\n".join(bad)


def test_the_dataset_audit_cycle_is_gone(graph: dict[str, list[Import]]) -> None:
    """The store keeps what was measured; the audit applies the spec when it reads it."""
    assert may_import("audit", "dataset") and not may_import("dataset", "audit")
    hits = [f"{n}:{i.line}" for n, imps in graph.items() if room_of(n) == "dataset"
            for i in imps if i.target.startswith("egoworld.audit")]
    assert not hits, hits


def _closure(graph: dict[str, list[Import]], roots: list[str]) -> dict[str, str]:
    """Every egoworld module reachable from ``roots``, with the module that first imported it."""
    seen = {r: r for r in roots}
    todo = list(roots)
    while todo:
        m = todo.pop()
        for i in graph.get(m, []):
            t = i.target
            while t and t not in graph and "." in t:  # `import egoworld.capture.sim.x` of a name, not a file
                t = t.rpartition(".")[0]
            if t in graph and t not in seen:
                seen[t] = m
                todo.append(t)
    return seen


@pytest.mark.parametrize("room", TORCH_FREE)
def test_torch_free_rooms_never_reach_torch(graph: dict[str, list[Import]], room: str) -> None:
    mods = [m for m in graph if room_of(m) == room]
    assert mods
    reach = _closure(graph, mods)
    bad = [f"{m}:{i.line} imports {i.target}" + ("" if room_of(m) == room else f" (reached from {reach[m]})")
           for m in reach for i in graph[m] if i.target.split(".")[0] in ("torch", "torchvision", "torchcodec")]
    assert not bad, f"{room}/ must not import torch:\n" + "\n".join(bad)


def test_model_never_touches_files(graph: dict[str, list[Import]]) -> None:
    mods = {m: p for m, p in modules().items() if room_of(m) == "model"}
    assert mods
    bad = [f"{m}:{i.line} imports {i.target}" for m in mods for i in graph[m]
           if i.target in FILE_MODULES or i.target.split(".")[0] in FILE_MODULES]
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
                if called in FILE_CALLS:
                    bad.append(f"{m}:{node.lineno} calls {called}()")
    assert not bad, "model/ never touches files (the run and train rooms read and write):\n" + "\n".join(bad)


# ---------------------------------------------------------------- the checker itself


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, list[Import]]:
    pkg = tmp_path / "egoworld"
    for rel, text in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    found = modules(pkg)
    return {n: imports_of(n, p, set(found)) for n, p in found.items()}


def test_the_walk_sees_every_kind_of_import(tmp_path: Path) -> None:
    g = _tree(tmp_path, {
        "__init__.py": "", "quat.py": "", "dataset/__init__.py": "", "audit/__init__.py": "", "audit/spec.py": "",
        "dataset/build.py": "from egoworld import quat as Q\n"
                            "def f():\n    from ..audit import spec\n    import egoworld.audit.spec\n"
                            "LAZY = {'x': 'egoworld.audit.spec'}\n",
    })
    targets = sorted(i.target for i in g["egoworld.dataset.build"])
    assert targets == ["egoworld.audit.spec", "egoworld.audit.spec", "egoworld.audit.spec", "egoworld.quat"]
    down = [i for i in g["egoworld.dataset.build"] if not may_import("dataset", room_of(i.target))]
    assert len(down) == 3  # the function-level, relative and by-name imports of a downstream room
