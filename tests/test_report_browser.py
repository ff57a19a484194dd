"""The demo's report.html renders in a real browser: every image decodes, every video loads, no console errors.

Headless Chromium (Debian's ``chromium``, which ``.ci/run`` installs) opens a copy of the report
with a small checking script appended; ``--dump-dom`` prints the page after the script has
written its findings into it. Console messages (and failed loads) go to stderr with
``--enable-logging=stderr``. Skipped only when no Chromium is installed outside CI.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHECK = """<script>
(function () {
  const failed = [];
  window.addEventListener('error', e => failed.push(String((e.target && (e.target.currentSrc || e.target.src || '').slice(0, 40)) || e.message)), true);
  function report() {
    const imgs = [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}));
    const vids = [...document.querySelectorAll('video')].map(v => ({title: v.title, ready: v.readyState, w: v.videoWidth,
                                                                   h: v.videoHeight, err: v.error ? v.error.code : null}));
    const pre = document.createElement('pre');
    pre.id = 'egoworld-check';
    pre.textContent = JSON.stringify({imgs, vids, failed});
    document.body.appendChild(pre);
  }
  window.addEventListener('load', () => {
    const vids = [...document.querySelectorAll('video')];
    const ready = vids.map(v => v.readyState >= 2 || v.error ? Promise.resolve() : new Promise(res => {
      v.addEventListener('loadeddata', res); v.addEventListener('error', res); setTimeout(res, 8000);
    }));
    Promise.all(ready).then(report);
  });
})();
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def render(html: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Open ``html`` with the check appended; returns (its findings, console lines)."""
    exe = find_chromium()
    page = tmp / "checked.html"
    text = html.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
           f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
           "--dump-dom", page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="egoworld-check">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, f"the check never reported (chromium rc {r.returncode}):\n{r.stderr[-3000:]}"
    import html as h

    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(h.unescape(m.group(1))), console


def test_demo_report_renders_in_chromium(demo_quick, tmp_path):
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    assert demo_quick["exit_code"] == 0, demo_quick["output"]
    found, console = render(demo_quick["out"] / "report.html", tmp_path)
    broken = [i["alt"] for i in found["imgs"] if not i["ok"]]
    assert not broken, f"images that did not decode: {broken}"
    assert len(found["imgs"]) >= 6
    bad = [v for v in found["vids"] if v["err"] is not None or v["ready"] < 2 or v["w"] == 0]
    assert not bad, f"videos that did not load: {bad}"
    assert len(found["vids"]) >= 3
    assert not found["failed"], f"resources that failed to load: {found['failed']}"
    assert not console, "console messages:\n" + "\n".join(console)


def test_the_check_sees_broken_media(tmp_path):
    """The checker itself: a broken image, an undecodable video and a console error are all caught."""
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><img alt='bad' src='data:image/png;base64,AAAA'>"
                    "<video title='bad' src='data:video/mp4;base64,AAAA'></video>"
                    "<script>console.error('oops')</script></body></html>")
    found, console = render(page, tmp_path)
    assert [i["ok"] for i in found["imgs"]] == [False]
    assert found["vids"][0]["err"] is not None or found["vids"][0]["w"] == 0
    assert any("oops" in line for line in console)
