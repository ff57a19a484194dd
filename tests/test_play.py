"""`egoworld play`: the server runs, headless Chromium drives it with keys, frames come back and follow the keys.

The browser test starts the real command (`python -m egoworld.cli play …`) on a free localhost port and
drives the page with Playwright, launching Debian's Chromium (``.ci/run`` installs it; Playwright's own
browser downloads are never used). A micro model trained for a few steps is enough: its decoder warps
the real start frame by the head's turn, so head keys must move the picture, and filtering/imagination
are deterministic (latent modes), so the same keys from the same start must give the same frames.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_dataset_fixture import synced_store_data
from typer.testing import CliRunner

from egoworld import runs
from egoworld.model import preset
from egoworld.play.keys import BY_CODE, control_from_keys, toggle_grip
from egoworld.train.loop import train

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
MICRO = dict(image_size=16, deter=48, hidden=48, cnn_depth=8, stoch=8, classes=8, seq_len=10, batch_size=8, overshoot=3,
             overshoot_stride=3, reward_bins=21, lr=2e-3, warmup=5, steps=10, val_every=10, ckpt_every=10, threads=1,
             context=3, log_every=10, reward_heads=2)
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = synced_store_data(tmp_path_factory)
    run = tmp_path_factory.mktemp("play") / "run"
    train(preset("tiny", **MICRO), str(data / "episodes"), run, progress=False, echo=lambda s: None)
    return {"data": data, "store": data / "episodes", "run": run}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium (Debian: apt-get install -y chromium; .ci/run installs it)")
    return exe


# ---------------------------------------------------------------- the keyboard map


def test_keys_build_the_control():
    grips = np.array([0.2, 0.9])
    c = control_from_keys({"ArrowLeft", "KeyW", "KeyL"}, grips)
    assert c[4] < 0 and c[8] > 0 and c[13] > 0  # head turns left; left wrist forward; right wrist right
    assert np.count_nonzero(c[:12]) == 2 and list(c[[12, 19]]) == [0.2, 0.9]
    assert not control_from_keys({"KeyW", "KeyS"}, grips)[8]  # opposite keys cancel
    assert list(toggle_grip("KeyQ", grips)) == [1.0, 0.9] and list(toggle_grip("KeyU", grips)) == [0.2, 0.0]
    assert all(k.kind in ("hold", "grip", "command", "page") for k in BY_CODE.values())


# ---------------------------------------------------------------- one-line errors


def _one_line_error(r) -> str:
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    return lines[0]


def test_busy_port_is_one_line(world):
    from egoworld.cli import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = CliRunner().invoke(app, ["play", str(world["run"]), "--data", str(world["store"]), "--port", str(port)])
    assert "busy" in _one_line_error(r) and str(port) in r.output


def test_store_without_the_task_is_one_line(world):
    from egoworld.cli import app

    r = CliRunner().invoke(app, ["play", str(world["run"]), "--data", str(world["store"]), "--task", "push", "--split", "val",
                                 "--port", "0"])
    line = _one_line_error(r)
    assert "no episode of task 'push' in the val split" in line and "stack" in line  # names what the store has instead


def test_run_without_a_decoder_is_one_line(world, tmp_path):
    from safetensors.torch import load_file, save_file

    from egoworld.cli import app

    src = runs.resolve(world["run"])
    ckpt = tmp_path / "no_decoder"
    shutil.copytree(src, ckpt)
    weights = load_file(str(ckpt / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("decoder.")}, str(ckpt / "model.safetensors"))
    r = CliRunner().invoke(app, ["play", str(ckpt), "--data", str(world["store"]), "--port", "0"])
    assert "no decoder" in _one_line_error(r)


# ---------------------------------------------------------------- the browser


@pytest.fixture
def server(world, tmp_path):
    """`egoworld play` on a free localhost port, as a person starts it; yields (url, out folder)."""
    port, out = free_port(), tmp_path / "played"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    proc = subprocess.Popen([sys.executable, "-m", "egoworld.cli", "play", str(world["run"]), "--data", str(world["store"]),
                             "--task", "push", "--port", str(port), "--starts", "3", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()  # the URL line comes once the model and the starts are loaded
        assert line.startswith(f"egoworld play: http://127.0.0.1:{port}/"), line + (proc.stdout.read() if proc.poll() is not None else "")
        yield f"http://127.0.0.1:{port}/", out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_chromium_drives_the_dream_and_its_twin(server):
    playwright = pytest.importorskip("playwright.sync_api")
    exe = chromium()
    url, out = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.goto(url)

        def last() -> dict:
            return page.evaluate("window.play.last")

        def wait_step(n: int, reply: str = "step") -> dict:
            page.wait_for_function(f"window.play.last && window.play.last.step === {n} && window.play.last.reply === '{reply}'",
                                   timeout=30000)
            return last()

        # frames arrive on their own while the game runs
        page.wait_for_function("window.play.frames >= 6", timeout=60000)
        hello = page.evaluate("window.play.hello")
        assert hello["twin"] and hello["task"] == "push" and hello["starts"] == 3 and hello["reward_heads"] == 2
        assert last()["sim"].startswith("data:image/png") and last()["disagreement"] is not None
        page.keyboard.press("Space")  # pause: from here on the test steps one frame at a time (".")
        page.keyboard.press("Backspace")
        start = wait_step(0, "restart")
        assert start["real"].startswith("data:image/png") and start["start"] == 0

        def drive(keys: list[str], steps: int = 3) -> dict:
            page.keyboard.press("Backspace")
            wait_step(0, "restart")
            for k in keys:
                page.keyboard.down(k)
            for n in range(1, steps + 1):
                page.keyboard.press("Period")
                f = wait_step(n)
            for k in keys:
                page.keyboard.up(k)
            return f

        still, left, right = drive([]), drive(["ArrowLeft"]), drive(["ArrowRight"])
        wrist, left_again = drive(["KeyW", "KeyA"]), drive(["ArrowLeft"])
        # different keys, different frames — in the dream and in the simulator
        assert len({still["dream"], left["dream"], right["dream"], wrist["dream"]}) == 4
        assert len({still["sim"], left["sim"], right["sim"], wrist["sim"]}) == 4
        assert left["control"][4] < 0 < right["control"][4] and wrist["control"][8] > 0 > wrist["control"][6]
        assert left_again["dream"] == left["dream"] and left_again["sim"] == left["sim"]  # same keys, same frames
        # reset returns the start frame, in both worlds
        page.keyboard.press("Backspace")
        back = wait_step(0, "restart")
        assert back["dream"] == start["dream"] and back["sim"] == start["sim"] and back["real"] == start["real"]
        # a grip key closes the left hand; the next step carries it
        page.keyboard.press("KeyQ")
        page.keyboard.press("Period")
        assert wait_step(1)["control"][12] == (1.0 if start["grips"][0] < 0.5 else 0.0)
        # hand over to the planner: it acts while we watch
        page.keyboard.press("KeyP")
        page.wait_for_function("window.play.last.planner === true", timeout=30000)
        for n in (2, 3, 4):
            page.keyboard.press("Period")
            f = wait_step(n)
        assert f["planner"] and np.any(np.abs(f["control"][6:9]) > 0)
        page.keyboard.press("KeyP")
        page.wait_for_function("window.play.last.planner === false", timeout=30000)
        # save the episode: 5 frames (start + 4 steps)
        page.keyboard.press("KeyX")
        page.wait_for_function("window.play.saved.length === 1", timeout=60000)
        saved = page.evaluate("window.play.saved[0]")
        # a new real start shows another recorded frame
        page.keyboard.press("KeyN")
        other = wait_step(0, "new")
        assert other["start"] == 1 and other["real"] != start["real"]
        page.screenshot(path=str(out.parent / "play.png"))
        errors = page.evaluate("window.play.errors")
        browser.close()
    assert not errors and not console, (errors, console)
    check_saved_episode(Path(saved["path"]), saved)


def check_saved_episode(path: Path, saved: dict) -> None:
    """The played episode is a synthetic episode the loader reads, with lineage to the model, its start and consent."""
    from egoworld.dataset.check import check_store
    from egoworld.dataset.loader import ClipDataset
    from egoworld.dataset.store import open_store
    from egoworld.imagine.synthetic import LINEAGE_PATH

    assert saved["frames"] == 5 and saved["controls_by"] == {"person": 1, "planner": 3}
    assert check_store(path) == []
    store = open_store(path)
    (row,) = store.episode_rows()
    assert row["source"] == "play" and row["length"] == 5 and store.info["egoworld"]["synthetic"] is True
    item = ClipDataset(path, T=4, size=16, split="all")[0]
    assert item["image"].shape == (4, 3, 16, 16) and item["action"].shape == (4, 138)
    lin = json.loads((path / LINEAGE_PATH).read_text())
    seed = next(e for e in lin["episodes"] if e["role"] == "seed")
    assert lin["source"] == "play" and lin["model"]["model_sha256"].startswith("sha256:")
    assert any(e["role"] == "model_training" for e in lin["episodes"])
    assert row["subject_id"] == seed["subject_id"] and json.loads(row["consent_json"])["subject_id"] == seed["subject_id"]
    ep = lin["synthetic_episodes"][0]
    assert ep["mode"] == "play" and ep["controls_by"] == {"person": 1, "planner": 3} and ep["planner"]["method"] == "cem"
