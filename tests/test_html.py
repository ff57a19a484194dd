"""The HTML kit (``egoworld/html.py``): escaping, tables, media, the page shell — and that every page
egoworld writes (the audit, the demo's combined report, eval.html) stands on it."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import egoworld
from egoworld import html as H

PACKAGE = Path(egoworld.__file__).resolve().parent


def test_text_is_escaped_and_raw_columns_are_not() -> None:
    t = H.table(["a<b", "ok"], [["<script>", H.mark(True)], [None, H.mark(False, "usable", "no")]], raw_cols={1})
    assert "<th>a&lt;b</th>" in t and "<td>&lt;script&gt;</td>" in t and "<script>" not in t
    assert '<td><span class="pass">pass</span></td>' in t and '<span class="fail">no</span>' in t
    assert "<td></td>" in t  # None is an empty cell, not "None"
    assert H.card("x & y", "<1>", "n") == "<div class='card'>x &amp; y<b>&lt;1&gt;</b><span class='small'>n</span></div>"
    assert H.measured_on("a<b") == "<p class='on'>a&lt;b</p>"


def test_page_is_one_self_contained_document(tmp_path: Path) -> None:
    text = H.page("a <title>", ["<h1>one</h1>", "<p>two</p>"])
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</body></html>")
    assert "<title>a &lt;title&gt;</title>" in text and f"<style>{H.CSS}</style>" in text
    assert text.index("<h1>one</h1>") < text.index("<p>two</p>")
    path = H.write_page(tmp_path / "p.html", text)
    assert path.read_text(encoding="utf-8") == text and [p.name for p in tmp_path.iterdir()] == ["p.html"]


def test_media_inline_or_linked(tmp_path: Path) -> None:
    clip = tmp_path / "clip one.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    inline = H.video(clip, "a clip")
    src = re.search(r'<video src="data:video/mp4;base64,([^"]+)"', inline).group(1)
    assert base64.b64decode(src) == clip.read_bytes() and 'title="a clip"' in inline
    linked = H.video(clip, "a clip", inline=False)
    assert '<video src="clip one.mp4"' in linked and "base64" not in linked and str(tmp_path) not in linked
    fig = H.figure("data:image/png;base64,AAAA", "cap & more", width=80)
    assert fig == ('<figure><img src="data:image/png;base64,AAAA" alt="cap &amp; more" width="80">'
                   "<figcaption>cap &amp; more</figcaption></figure>")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_, ax = plt.subplots()
    ax.plot([0, 1])
    uri = H.png(fig_)
    assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG" and not plt.get_fignums()


def test_every_page_stands_on_the_kit() -> None:
    """One home: no other module writes a document shell, a stylesheet or its own escaping."""
    bad = []
    for p in sorted(PACKAGE.rglob("*.py")):
        if p == PACKAGE / "html.py":
            continue
        text = p.read_text(encoding="utf-8")
        for pattern in (r"<!doctype html", r"<style>", r"^import html$", r"^from html import", r"html\.escape\("):
            if re.search(pattern, text, re.IGNORECASE | re.MULTILINE):
                bad.append(f"{p.relative_to(PACKAGE.parent)}: {pattern}")
    assert not bad, bad
    assert not (PACKAGE / "report" / "html.py").exists()


def test_eval_page_links_its_files_and_escapes(tmp_path: Path) -> None:
    from egoworld.evaluate.report import write_html

    curves = {"psnr": [20.0, 18.5], "ssim": [0.9, 0.8], "probe_all": [0.1, 0.2], "n_clips": 4}
    paired = {"psnr_vs_copy_last": {"2": {"mean": 1.5, "low": 0.5, "high": 2.5, "verdict": "better"}}}
    result = {"checkpoint": "runs/<m>/step_1", "context": 3, "horizons": [1, 2],
              "splits": {"val": {"model": curves, "copy_last": curves, "beats": {"all_horizons_ge_2": True}, "paired": paired},
                         "heldout": {}}}
    (tmp_path / "psnr_vs_horizon.png").write_bytes(b"png")
    (tmp_path / "clip_0.mp4").write_bytes(b"mp4")
    path = write_html(result, tmp_path, [tmp_path / "psnr_vs_horizon.png"], [tmp_path / "clip_0.mp4"])
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "eval.html" and f"<style>{H.CSS}</style>" in text
    assert "runs/&lt;m&gt;/step_1" in text and "<m>" not in text
    assert "<td>model</td><td>psnr</td><td>20.000</td><td>18.500</td>" in text
    assert "<b>better</b>" in text and "+1.5000 [+0.5000, +2.5000]" in text
    assert '<img src="psnr_vs_horizon.png"' in text and '<video src="clip_0.mp4"' in text
    assert str(tmp_path) not in text  # files beside the page, linked by name
