"""Start `egoworld play`, drive it for a few seconds from headless Chromium, and save a screenshot of the page.

    python scripts/screenshot_play.py RUN --data STORE [--task push] [--out play.png] [--width 1280] [--height 760]

The keys held: turn the head left while the left wrist reaches forward, then the right wrist reaches
right; then the planner takes over for a second. Chromium is Debian's (``apt-get install -y
chromium``), launched through Playwright without any browser download. Exit 3 when none is installed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", default="push")
    ap.add_argument("--out", type=Path, default=Path("play.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=760)
    ap.add_argument("--start", type=int, default=0, help="which real start to show (N presses)")
    a = ap.parse_args()
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        print("no chromium on PATH (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 3
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "egoworld.cli", "play", a.run, "--data", a.data, "--task", a.task,
                             "--port", str(port), "--out", tempfile.mkdtemp(prefix="egoworld-play-")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()
        if not line.startswith("egoworld play: "):
            print(line + proc.stdout.read(), file=sys.stderr)
            return 1
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": a.width, "height": a.height})
            page.goto(line.split()[2])
            page.wait_for_function("window.play.frames >= 3", timeout=60000)
            for _ in range(a.start):
                page.keyboard.press("KeyN")
                time.sleep(1.0)
            for keys, seconds in ((["ArrowLeft", "KeyW"], 0.8), (["KeyL", "KeyI"], 1.2)):
                for k in keys:
                    page.keyboard.down(k)
                time.sleep(seconds)
                for k in keys:
                    page.keyboard.up(k)
            page.keyboard.press("KeyP")  # hand over to the planner
            time.sleep(1.5)
            page.keyboard.down("KeyQ")  # show a key lit in the help while the shot is taken
            page.screenshot(path=str(a.out))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
