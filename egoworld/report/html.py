"""Small HTML pieces for the combined report: inline media (data URIs), tables, cards, "measured on" notes.

Everything a page needs is inside it — PNG figures, H.264 videos and animated WebP as base64
data URIs — so the one file opens offline, mailed or archived, in any browser. Tables and
PNG figures come from the audit report's building blocks so that both reports look alike.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from egoworld.audit.report import CSS as AUDIT_CSS
from egoworld.audit.report import img, mark, png, table

__all__ = ["CSS", "card", "cards", "esc", "figure", "img", "mark", "measured_on", "png", "table", "video", "webp"]

CSS = AUDIT_CSS + """
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 0;z-index:2}
nav a{margin-right:14px;text-decoration:none;color:#1d4ed8;font-weight:600}
section{margin-bottom:28px}.on{color:#555;font-size:12px;font-style:italic;margin:2px 0 10px}
.on::before{content:"measured on: ";font-weight:600;font-style:normal}
video{border:1px solid #999;image-rendering:pixelated;max-width:100%}
.grid td{text-align:center}.grid img{border:1px solid #999;image-rendering:pixelated}
.notrun{color:#92400e;background:#fffbeb;border:1px solid #fcd34d;padding:8px 12px;border-radius:6px}
.num{text-align:right;font-variant-numeric:tabular-nums}"""


def esc(x: object) -> str:
    return html.escape("" if x is None else str(x))


def measured_on(text: str) -> str:
    """The line under every number or figure that says what it was measured on."""
    return f"<p class='on'>{esc(text)}</p>"


def card(label: str, value: object, note: str = "") -> str:
    n = f"<span class='small'>{esc(note)}</span>" if note else ""
    return f"<div class='card'>{esc(label)}<b>{esc(value)}</b>{n}</div>"


def cards(items: list[tuple[str, object] | tuple[str, object, str]]) -> str:
    return "<div>" + "".join(card(*it) for it in items) + "</div>"


def figure(src: str, caption: str, width: int | None = None) -> str:
    return f"<figure>{img(src, caption, width)}<figcaption>{esc(caption)}</figcaption></figure>"


def data_uri(path: str | Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode()


def video(path: str | Path, caption: str, width: int | None = None) -> str:
    """An H.264 mp4 inline: plays on its own (muted, looped) and has controls."""
    w = f' width="{width}"' if width else ""
    return (f"<figure><video src=\"{data_uri(path, 'video/mp4')}\" controls autoplay muted loop playsinline{w} "
            f"title=\"{esc(caption)}\"></video><figcaption>{esc(caption)}</figcaption></figure>")


def webp(path: str | Path, caption: str, width: int | None = None) -> str:
    """An animated WebP inline (an image: plays everywhere without a video decoder)."""
    return figure(data_uri(path, "image/webp"), caption, width)
