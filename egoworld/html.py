"""The HTML kit: one stylesheet, the page shell and the pieces every egoworld page is built from.

The audit's ``report.html``, the demo's combined report and the evaluation's ``eval.html`` stand on
it, so they look alike and escape alike. Pages are self-contained where they can be: PNG figures,
H.264 videos and animated WebP go in as base64 data URIs, so one file opens offline, mailed or
archived, in any browser; no scripts, no external links. Writes are atomic.
"""
from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from typing import Any

from egoworld._atomic import atomic_path

__all__ = ["CSS", "card", "cards", "data_uri", "esc", "figure", "img", "mark", "measured_on", "page", "png", "table",
           "video", "webp", "write_page"]

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:26px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass,.ok,.yes{color:#15803d;font-weight:600}.fail,.no{color:#b91c1c;font-weight:600}
.card{display:inline-block;border:1px solid #ddd;border-radius:6px;padding:8px 14px;margin:4px;min-width:120px}
.card b{display:block;font-size:22px}.frames img{margin:3px;border:1px solid #999}.small{color:#666;font-size:12px}
figure{display:inline-block;margin:6px}figcaption{font-size:12px;color:#555;text-align:center}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 0;z-index:2}
nav a{margin-right:14px;text-decoration:none;color:#1d4ed8;font-weight:600}
section{margin-bottom:28px}.on{color:#555;font-size:12px;font-style:italic;margin:2px 0 10px}
.on::before{content:"measured on: ";font-weight:600;font-style:normal}
video{border:1px solid #999;image-rendering:pixelated;max-width:100%}
.grid td{text-align:center}.grid img{border:1px solid #999;image-rendering:pixelated}
.notrun{color:#92400e;background:#fffbeb;border:1px solid #fcd34d;padding:8px 12px;border-radius:6px}
.num{text-align:right;font-variant-numeric:tabular-nums}"""


def esc(x: object) -> str:
    """Text for HTML (None → empty)."""
    return escape("" if x is None else str(x))


def page(title: str, body: list[str]) -> str:
    """A whole document: the shell with the stylesheet, then ``body``'s pieces in order."""
    return "\n".join([f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
                      f"<style>{CSS}</style></head><body>", *body, "</body></html>"])


def write_page(path: str | Path, text: str) -> Path:
    """Write a page atomically (a reader never sees half of it); returns the path."""
    path = Path(path)
    with atomic_path(path, ".html") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- media


def png(fig: Any) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def data_uri(path: str | Path, mime: str) -> str:
    """A file's bytes as a data URI."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def img(src: str, alt: str, width: int | None = None) -> str:
    w = f' width="{width}"' if width else ""
    return f'<img src="{src}" alt="{esc(alt)}"{w}>'


def figure(src: str, caption: str, width: int | None = None) -> str:
    """An image with its caption under it."""
    return f"<figure>{img(src, caption, width)}<figcaption>{esc(caption)}</figcaption></figure>"


def video(path: str | Path, caption: str, width: int | None = None, inline: bool = True) -> str:
    """An H.264 mp4 that plays on its own (muted, looped) and has controls: inside the page
    (``inline``), or linked by file name when the page is written beside it."""
    src = data_uri(path, "video/mp4") if inline else esc(Path(path).name)
    w = f' width="{width}"' if width else ""
    return (f"<figure><video src=\"{src}\" controls autoplay muted loop playsinline{w} "
            f"title=\"{esc(caption)}\"></video><figcaption>{esc(caption)}</figcaption></figure>")


def webp(path: str | Path, caption: str, width: int | None = None) -> str:
    """An animated WebP inline (an image: plays everywhere without a video decoder)."""
    return figure(data_uri(path, "image/webp"), caption, width)


# ---------------------------------------------------------------- text


def table(headers: list[str], rows: list[list], raw_cols: set[int] = frozenset()) -> str:
    """A table; every cell escaped except the columns in ``raw_cols`` (already HTML)."""
    h = "".join(f"<th>{esc(x)}</th>" for x in headers)
    body = []
    for r in rows:
        cells = "".join(f"<td>{c if i in raw_cols else esc(c)}</td>" for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{h}</tr>{''.join(body)}</table>"


def mark(ok: bool, yes: str = "pass", no: str = "fail") -> str:
    """A green ``yes`` or a red ``no``."""
    return f'<span class="{"pass" if ok else "fail"}">{yes if ok else no}</span>'


def card(label: str, value: object, note: str = "") -> str:
    """A headline number: its label, the value large, an optional note."""
    n = f"<span class='small'>{esc(note)}</span>" if note else ""
    return f"<div class='card'>{esc(label)}<b>{esc(value)}</b>{n}</div>"


def cards(items: list[tuple[str, object] | tuple[str, object, str]]) -> str:
    return "<div>" + "".join(card(*it) for it in items) + "</div>"


def measured_on(text: str) -> str:
    """The line under every number or figure that says what it was measured on."""
    return f"<p class='on'>{esc(text)}</p>"
