"""Render a report (the demo's report.html, the audit's audit.html) in headless Chromium and save a PNG.

    python scripts/screenshot_report.py DEMO/report.html [--out report.png] [--width 1280] [--height 4000]

Exit 0 with the PNG written; exit 3 with a clear message when no chromium is installed
(Debian: ``apt-get install -y chromium``).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 4000, timeout: float = 120.0) -> Path:
    """Screenshot ``html`` with headless Chromium (no network, throwaway profile)."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               f"--screenshot={out.resolve()}", f"--window-size={width},{height}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot for {html}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--out", type=Path, default=Path("report.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000)
    a = ap.parse_args()
    try:
        screenshot(a.html, a.out, a.width, a.height)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 3
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
