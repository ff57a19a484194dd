"""The README's "A tour of the CLI" runs: every `egoworld …` command of its code block, as written, in order.

The commands are read from README.md on every run, so the test follows the README. They run in a scratch
folder where the tour's relative paths (``data/``, ``runs/``, ``clip.mp4``) exist, on a small simulated
capture and micro training runs. What a CPU test cannot afford is changed explicitly, nothing else:

* ``SMALLER``: option values that shrink a capture, a training run, a planner or the interaction loop,
  keyed by the command (``capture sim``, ``train`` …); an option the README gives is replaced, one it
  does not give is added.
* ``data/<session>`` names the first captured session; ``clip.mp4`` is a GoPro-style clip built from a
  synthetic session (its IMU in a GPMF track, as the importer tests build it).
* ``play`` serves on a free port (not 8765, which another run may hold) in a subprocess, and is stopped
  once its page has been fetched.
* ``demo --quick`` is the test run's one ``egoworld demo --quick`` (conftest's ``demo_quick``: the same
  command with ``--out``), as CI runs the demo once.
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR = "## A tour of the CLI"

MICRO_MODEL = ["--set", "deter=48", "--set", "hidden=48", "--set", "cnn_depth=8", "--set", "stoch=8", "--set", "classes=8",
               "--set", "overshoot_stride=3", "--set", "reward_bins=21", "--set", "warmup=5", "--set", "threads=1",
               "--set", "context=3", "--set", "val_every=10", "--set", "ckpt_every=10", "--set", "log_every=10"]
SMALLER: dict[str, dict[str, str]] = {
    # 4 × 8 s at 128² (every session syncs; 4 people, so the tour's person_03 exists)
    "capture sim": {"--places": "4", "--people": "4", "--sessions": "4", "--seconds": "8", "--width": "128", "--height": "128"},
    # 10 steps of a micro model (--steps overrides --minutes)
    "train": {"--steps": "10", "--image-size": "16", "--batch-size": "8", "--seq-len": "10", "--overshoot": "3"},
    # one 6-frame episode per method × places, small planners
    "plan": {"--task": "push", "--episodes": "1", "--max-steps": "6", "--samples": "8", "--iterations": "1",
             "--oracle-samples": "4", "--render-size": "32"},
    # short sessions, a few fine-tuning steps, one closed-loop episode per round
    "improve": {"--sessions": "1", "--seconds": "4", "--steps": "2", "--eval-episodes": "1"},
}
EXTRA = {"train": MICRO_MODEL}

# What each command must print (besides exiting 0), whitespace folded to single spaces: evidence it did its
# job on the tour's data.
EXPECT = {
    "capture sim": r"wrote 4 sessions to data",
    "import camera": r"wrote real/clip",
    "inspect": r"head_pose .* consent: subject",
    "sync": r"4 sessions → data/aligned \(0 failed\)",
    "episodes": r"wrote 4 episodes, \d+ frames → data/episodes",
    "query": r"place_0\d|row 1",
    "audit": r"4 sessions, 4 episodes.* wrote data/audit\.json and data/report\.html",
    "export": r"exported \d+ episodes \(\d+ frames\) cleared for commercial → cleared",
    "consent revoke": r"revoked person_03 as of .*: 1 session\(s\), 1 store episode\(s\)",
    "train": r'"checkpoint": "runs/\w+/checkpoints/step_00000010"',
    "eval": r"wrote runs/tiny/eval/eval\.json",
    "plan": r"wrote runs/\w+/closed_loop/results\.json .* world-model replan",
    "improve": r"round 2: \+1 sessions",
    "view": r"session s000-\S+: \d+ frames, \d+ entities — saved s000-\S+\.rrd",
    "demo": r"report\.html",
}


def tour_commands(readme: Path = README) -> list[list[str]]:
    """The tour's commands as argument lists (``egoworld`` dropped): comments stripped, ``a && b`` split in two."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(TOUR)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block, f"{readme}: no ```bash block under {TOUR!r}"
    out = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            cmd, words = words[:cut], words[cut + 1:]
            assert cmd[0] == "egoworld", f"{readme}: the tour runs {line!r}, not an egoworld command"
            out.append(cmd[1:])
    return out


def name_of(args: list[str]) -> str:
    """``capture sim``, ``consent revoke``, ``import camera`` (a group and its command) or ``train``."""
    return " ".join(args[:2]) if args[0] in ("capture", "consent", "import") else args[0]


def smaller(args: list[str]) -> list[str]:
    """``args`` with SMALLER's values for this command (replaced where given, added where not) and EXTRA's options."""
    args = list(args)
    for opt, value in SMALLER.get(name_of(args), {}).items():
        if opt in args:
            args[args.index(opt) + 1] = value
        else:
            args += [opt, value]
    return args + EXTRA.get(name_of(args), [])


def test_the_tour_is_read_from_the_readme():
    cmds = tour_commands()
    names = [name_of(c) for c in cmds]
    assert names[:3] == ["capture sim", "import camera", "inspect"] and names[-1] == "demo", names
    assert ["train", "eval"] in [names[i:i + 2] for i in range(len(names))]  # `a && b` is two commands
    assert all(not any(w.startswith("#") for w in c) for c in cmds)  # comments are gone
    assert ["query", "data", "SELECT * FROM sessions"] in cmds  # quoted SQL stays one argument
    assert set(SMALLER) | set(EXTRA) <= set(names), "an override names a command the tour no longer has"
    assert smaller(["train", "data/episodes", "--minutes", "20", "--out", "runs/tiny"])[:8] == [
        "train", "data/episodes", "--minutes", "20", "--out", "runs/tiny", "--steps", "10"]
    assert smaller(["capture", "sim", "--sessions", "48"])[2:4] == ["--sessions", "4"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _play(args: list[str]) -> str:
    """`egoworld play …` as a person starts it, on a free port: fetch its page, then stop it; returns what it said."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    with subprocess.Popen([sys.executable, "-m", "egoworld.cli", *args, "--port", str(port)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env) as proc:
        try:
            line = proc.stdout.readline()  # the URL line comes once the model and the starts are loaded
            url = f"http://127.0.0.1:{port}/"
            assert line.startswith(f"egoworld play: {url}"), line + (proc.stdout.read() if proc.poll() is not None else "")
            with urllib.request.urlopen(url, timeout=30) as r:
                assert r.status == 200 and "<title>egoworld play</title>" in r.read().decode()
            return line
        finally:
            proc.kill()  # the server holds nothing worth a graceful stop; leaving the block waits for it


def _clip(at: Path, scratch: Path) -> None:
    """clip.mp4: a GoPro-style clip (video + GPMF IMU track) of a synthetic session."""
    from egoworld.sync.synthetic import SynthConfig, make_session
    from tests.fixtures_import import build

    build.gopro_mp4(make_session(scratch / "clip_source", SynthConfig(seed=21, seconds=8.0)), at)


@pytest.mark.slow
def test_every_command_of_the_tour_runs(tmp_path, monkeypatch, demo_quick):
    """About 2 min on a 2-core machine, the shared demo run (2-5 min) not counted."""
    from egoworld.cli import app

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DISPLAY", raising=False)  # `egoworld view` saves an .rrd instead of opening a window
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    _clip(work / "clip.mp4", tmp_path)
    runner = CliRunner()
    for args in tour_commands():
        name = name_of(args)
        if args == ["demo", "--quick"]:
            assert demo_quick["exit_code"] == 0, demo_quick["output"][-3000:]
            said = demo_quick["output"]
        else:
            sessions = sorted(p.name for p in (work / "data").iterdir() if (p / "session.json").exists()) \
                if (work / "data").is_dir() else []
            args = [a.replace("<session>", sessions[0]) if "<session>" in a else a for a in smaller(args)]
            if name == "play":
                said = _play(args)
            else:
                r = runner.invoke(app, args, terminal_width=100)
                assert r.exit_code == 0, f"egoworld {shlex.join(args)} exited {r.exit_code}:\n{r.output[-3000:]}\n{r.exception!r}"
                said = r.output
        assert re.search(EXPECT.get(name, r"\S"), " ".join(said.split())), f"egoworld {shlex.join(args)} said:\n{said[-3000:]}"
    assert (work / "real" / "clip" / "session.json").exists() and (work / "cleared" / "meta" / "info.json").exists()
    assert (work / "runs" / "improve" / "improve.json").exists() and list(work.glob("*.rrd"))
