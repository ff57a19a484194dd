"""Figures, side-by-side videos and a small HTML page for ``eval.json`` (on the HTML kit, ``egoworld.html``).

Plots: PSNR / SSIM / probe error vs horizon for the model and each baseline, per split.
Videos: real | imagined | copy-last | action-blind, side by side, with the context frames first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoworld._atomic import atomic_path
from egoworld.html import esc, figure, page, table, video, write_page

STYLE = {"model": ("tab:blue", "-"), "copy_last": ("tab:gray", "--"), "action_blind": ("tab:red", ":")}


METRIC_LABELS = {"psnr": "PSNR (dB, higher is better)", "ssim": "SSIM (higher is better)",
                 "probe_all": "state-probe error (m, lower is better)", "probe_object": "object probe error (m)",
                 "probe_hands": "hand probe error (m)"}


def curve_metrics(result: dict[str, Any]) -> list[str]:
    """The metrics ``result`` has curves for, in display order."""
    splits = [s for s in result["splits"] if result["splits"][s]]
    return [m for m in ("psnr", "ssim", "probe_all", "probe_object", "probe_hands")
            if any(m in result["splits"][s].get("model", {}) for s in splits)]


def curve_figure(result: dict[str, Any], metric: str):
    """A matplotlib figure of ``metric`` vs horizon: a panel per split, a line per model and baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullFormatter

    splits = [s for s in result["splits"] if result["splits"][s]]
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False)
    for ax, split in zip(axes[0], splits):
        res = result["splits"][split]
        for name, curves in res.items():
            if not isinstance(curves, dict) or metric not in curves:
                continue
            y = curves[metric]
            colour, ls = STYLE.get(name, (None, "-."))
            ax.plot(range(1, len(y) + 1), y, color=colour, linestyle=ls, label=name)
        n = res.get("model", {}).get("n_clips")
        ax.set_xscale("log")
        ticks = [h for h in (1, 2, 5, 10, 20, 32) if h <= max(result.get("horizons") or [32])]
        ax.set_xticks(ticks, [str(h) for h in ticks])  # plain labels (mathtext 10ⁿ are slow and less readable)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("horizon (frames)")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=8)
        ax.set_title(f"{split} ({n} clips): {metric}" if n else f"{split}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_curves(result: dict[str, Any], out: Path) -> list[Path]:
    """One PNG per metric, a panel per split; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for metric in curve_metrics(result):
        fig = curve_figure(result, metric)
        path = out / f"{metric}_vs_horizon.png"
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        files.append(path)
    return files


def write_video(frames: dict[str, torch.Tensor], path: Path, fps: int = 10, scale: int = 3) -> Path:
    """Side-by-side H.264 video of one clip: columns in the order of ``frames`` (each (T, 3, S, S) uint8)."""
    import av

    cols = [f.permute(0, 2, 3, 1).numpy() for f in frames.values()]
    grid = np.concatenate(cols, axis=2)
    grid = grid.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = grid.shape[1:3]
    h, w = h - h % 2, w - w % 2
    with atomic_path(path, ".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as c:
            s = c.add_stream("libx264", rate=fps)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for img in grid:
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
    return path


def _table(res: dict[str, Any], horizons: list[int]) -> str:
    rows = []
    for name, curves in res.items():
        if not isinstance(curves, dict) or "psnr" not in curves:
            continue
        for metric in ("psnr", "ssim", "probe_all"):
            if metric in curves:
                rows.append([name, metric, *(f"{curves[metric][h - 1]:.3f}" for h in horizons if h <= len(curves[metric]))])
    return table(["model", "metric", *(f"h={h}" for h in horizons)], rows)


def _paired_table(paired: dict[str, Any]) -> str:
    """Model − baseline per horizon with its 95 % interval (episodes resampled): better / worse / tie."""
    rows, hs = [], []
    for name, by_h in paired.items():
        hs = hs or list(by_h)
        rows.append([esc(name), *(f"{v['mean']:+.4f} [{v['low']:+.4f}, {v['high']:+.4f}] <b>{esc(v['verdict'])}</b>"
                                  for v in by_h.values())])
    return ("<p>How much better the model is (positive: better; dB for PSNR, metres for the probe), "
            "95 % interval over episodes:</p>"
            + table(["model vs", *(f"h={h}" for h in hs)], rows, raw_cols=set(range(len(hs) + 1))))


def write_html(result: dict[str, Any], out: Path, figures: list[Path], videos: list[Path]) -> Path:
    """``out/eval.html``: the tables, and the figures and videos written beside it (linked by name)."""
    parts = [f"<h1>World-model evaluation</h1><p>checkpoint <code>{esc(result['checkpoint'])}</code>, "
             f"context {result['context']} frames</p>"]
    for split, res in result["splits"].items():
        if res:
            parts.append(f"<h2>{esc(split)} ({res['model']['n_clips']} clips)</h2>" + _table(res, result["horizons"]))
            beats = res.get("beats", {})
            parts.append(f"<p>beats both baselines at every horizon ≥ 2: <b>{beats.get('all_horizons_ge_2')}</b></p>")
            if res.get("paired"):
                parts.append(_paired_table(res["paired"]))
            tr = res["model"].get("tracked_object")
            if tr:
                mv, st = tr["moved"], tr["still"]
                parts.append(f"<p>tracked object after {tr['horizon']} imagined steps: where it moved more than "
                             f"{tr['moved_threshold_m']} m ({mv['n']} clips) {mv['median_m']} m off, against "
                             f"{mv['stays_put_m']} m for &ldquo;it stays put&rdquo;; where it did not ({st['n']} clips) "
                             f"{st['median_drift_m']} m of drift (medians)</p>")
    if result.get("counterfactual"):
        parts.append("<h2>Counterfactual sensitivity</h2><pre>" + esc(result["counterfactual"]) + "</pre>")
    parts += [figure(esc(f.name), f.stem) for f in figures]
    parts += [f"<h3>{esc(v.stem)}</h3><p>real | imagined | copy-last | action-blind</p>" + video(v, v.stem, inline=False)
              for v in videos]
    return write_page(out / "eval.html", page("egoworld eval", parts))
