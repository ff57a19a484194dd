"""The report's model section: training curves, error vs horizon against the baselines, videos, the counterfactual.

Baselines, scored on the same clips as the model: *copy-last* repeats the last context frame
(a strong one for short horizons in a slow scene) and *action-blind* is the same network
trained with the actions zeroed — what the model gains from knowing what the body did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from egoworld.html import (
    esc,
    figure,
    mark,
    measured_on,
    png,
    table,
    video,
)

NAMES = {"model": "model", "copy_last": "copy-last", "action_blind": "action-blind"}
SHOW_H = (1, 2, 5, 10, 20, 32)


def loss_figure(runs: dict[str, dict[str, dict[str, np.ndarray]]]) -> str | None:
    """Total and image loss vs step, train and val, for each run (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(runs.values()):
        return None
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.2))
    colours = {"model": "tab:blue", "action_blind": "tab:red"}
    for name, m in runs.items():
        for split, ls, marker in (("train", "-", None), ("val", "--", "o")):
            d = m.get(split)
            if not d or not len(d["step"]):
                continue
            for ax, col in zip(axs, ("loss", "image")):
                if col in d:
                    ax.plot(d["step"], d[col], ls, marker=marker, ms=3, color=colours.get(name), label=f"{NAMES.get(name, name)} {split}")
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    for ax, title in zip(axs, ("total loss", "image loss (reconstruction + open-loop)")):
        ax.set_yscale("log")  # plain tick labels: mathtext ones cost seconds to lay out
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axs[1].legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def _fmt(metric: str, x: float) -> str:
    return f"{x:.2f}" if metric == "psnr" else f"{x:.3f}"


def horizon_table(res: dict[str, Any], metric: str) -> tuple[str, dict]:
    """Rows model / copy-last / action-blind, a column per horizon; the best at each horizon in bold."""
    names = [n for n in ("model", "copy_last", "action_blind") if isinstance(res.get(n), dict) and metric in res[n]]
    hs = [h for h in SHOW_H if h <= len(res["model"][metric])]
    better = max if metric in ("psnr", "ssim") else min
    nums = {n: {str(h): round(float(res[n][metric][h - 1]), 4) for h in hs} for n in names}
    rows = []
    for n in names:
        cells = []
        for h in hs:
            v = res[n][metric][h - 1]
            best = better(res[k][metric][h - 1] for k in names) == v
            cells.append(f"<b>{_fmt(metric, v)}</b>" if best else _fmt(metric, v))
        rows.append([NAMES.get(n, n), *cells])
    return table(["", *[f"h={h}" for h in hs]], rows, raw_cols=set(range(1, len(hs) + 1))), nums


PROBE_LABELS = {"probe_all": "state probe", "probe_hands": "probe (hands)", "probe_object": "probe (object)"}


def _beats_line(res: dict[str, Any]) -> tuple[str, dict]:
    """Does the model beat each baseline at every horizon ≥ 2 (PSNR higher; state-probe error lower)?"""
    b = res.get("beats", {})
    out = {}
    cells = []
    for base in ("copy_last", "action_blind"):
        for metric in ("psnr", "probe_all", "probe_hands", "probe_object"):
            wins = b.get(f"{metric}_vs_{base}")
            if wins is None:
                continue
            ok = all(wins.values())
            out[f"{metric}_vs_{base}"] = ok
            cells.append(f"{PROBE_LABELS.get(metric, 'PSNR')} vs {NAMES[base]}: "
                         f"{mark(ok, 'beats at every h ≥ 2', 'not at h = ' + ', '.join(h for h, w in wins.items() if not w))}"
                         + _interval_note(res.get("paired", {}).get(f"{metric}_vs_{base}")))
    return " · ".join(cells), out


def _interval_note(paired: dict[str, Any] | None) -> str:
    """' (95 % interval over episodes: better at h = 5, 10; tie at h = 2)' from eval.json's ``paired``."""
    if not paired:
        return ""
    by: dict[str, list[str]] = {}
    for h, v in paired.items():
        by.setdefault(v["verdict"], []).append(h)
    parts = [f"{verdict} at h = {', '.join(hs)}" for verdict, hs in by.items()]
    return esc(f" (95 % interval over episodes: {'; '.join(parts)})")


def model_section(root: Path, summary: dict, ev: dict, splits: dict[str, list[str]], counterfactual: dict | None = None) -> tuple[str, dict]:
    """HTML of the model section and its numbers (for report.json)."""
    from egoworld.evaluate.report import curve_figure
    from egoworld.runs import read_metrics

    plan = summary.get("plan", {})
    steps = plan.get("train_steps")
    runs = {k: read_metrics(root / "runs" / k) for k in ("model", "action_blind")}
    parts = ["<h2 id='model'>World model</h2>",
             "<p>A tiny RSSM world model (DreamerV3 line) learns to predict the next frames from the past frames and the "
             "body's actions; its action-blind twin is the same network trained with the actions zeroed. Both train for the "
             f"same fixed number of steps ({steps}) from the same seed on the store's training split.</p>"]
    numbers: dict[str, Any] = {"train_steps": steps, "splits": {}}
    train_eps = splits.get("train", [])
    src = loss_figure(runs)
    if src:
        parts += ["<h3>Training</h3>", figure(src, "loss vs step (log scale): model and action-blind; train and val"),
                  measured_on(f"train: the training batches at each logged step ({len(train_eps)} training episodes); "
                              f"val: the val clips ({len(splits.get('val', []))} episodes) at each checkpoint")]
        numbers["final_loss"] = {k: {s: round(float(m[s]["loss"][-1]), 3) for s in m if len(m[s].get("loss", []))}
                                 for k, m in runs.items() if m}
    parts.append("<h3>Error vs horizon</h3>")
    parts.append(f"<p>From {ev['context']} real context frames each model imagines up to {max(ev['horizons'])} frames "
                 "driven only by the recorded actions (open loop); at horizon h the imagined frame is scored against "
                 "the real one. The state probe reads the true hand and object positions (camera frame, metres) "
                 "back from the latent — a one-layer MLP probe fitted on filtered and imagined features of training clips.</p>")
    for split, res in ev.get("splits", {}).items():
        if not res:
            continue
        n = res["model"]["n_clips"]
        eps = splits.get(split, [])
        line, beats = _beats_line(res)
        parts.append(f"<h4>{esc(split)} split</h4><p>{line}</p>")
        numbers["splits"][split] = {"n_clips": n, "episodes": eps, "beats": beats}
        for metric, label in (("psnr", "PSNR (dB, higher is better)"), ("probe_all", "state-probe error (m, lower is better)"),
                              ("probe_hands", "state probe, hands only (m): what the body part of the state carries"),
                              ("probe_object", "state probe, task object only (m): what the latent learned from the frames")):
            if metric not in res["model"]:
                continue
            html_t, nums = horizon_table(res, metric)
            parts.append(f"<p><b>{label}</b></p>{html_t}")
            numbers["splits"][split][metric] = nums
        parts.append(measured_on(f"{n} clips of {ev['context'] + max(ev['horizons'])} frames from the {split} split "
                                 f"({len(eps)} episodes: {', '.join(eps)}); mean over clips"))
    for metric in ("psnr", "probe_all"):
        if any(metric in (r or {}).get("model", {}) for r in ev.get("splits", {}).values()):
            import matplotlib.pyplot as plt

            fig = curve_figure(ev, metric)
            parts.append(figure(png(fig), f"{metric} vs horizon, per split (log horizon axis)"))
            plt.close("all")
    vids = [root / "eval" / v for v in ev.get("videos", [])]
    if vids:
        parts.append("<h3>Real | imagined | copy-last | action-blind</h3>")
        parts.append("<div>" + "".join(video(v, f"{v.stem}: real | model | copy-last | action-blind") for v in vids if v.exists()) + "</div>")
        parts.append(measured_on(f"the first {len(vids)} clips of the evaluation set of the split named in each title; the first "
                                 f"{ev['context']} frames are the context (identical in every column), then the open-loop prediction"))
    parts.append("<h3>Counterfactual: one start, two action sequences</h3>")
    cf = ev.get("counterfactual") or {}
    if counterfactual and (root / "eval" / counterfactual["file"]).exists():
        about = counterfactual
        parts.append(f"<p>From frame {about['start_frame']} of {esc(Path(about['session']).name)} ({esc(about['split'])} split): "
                     f"<b>A</b> = {esc(about['A'])}; <b>B</b> = {esc(about['B'])}. Top row A, bottom row B; columns "
                     f"{esc(' | '.join(NAMES.get(c, c) for c in about['columns']))}. The simulator replays both from the "
                     "recorded state; the models imagine both from the same context.</p>")
        parts.append(video(root / "eval" / about["file"], "rows A / B; columns " + " | ".join(NAMES.get(c, c) for c in about["columns"])))
        parts.append(measured_on(f"one clip: {about['context']} context frames, then {about['horizon']} frames of each action sequence"))
        numbers["counterfactual_clip"] = {k: about[k] for k in ("episode", "start_frame", "context", "horizon", "split")}
    if cf:
        parts.append(table(["", "cosine(Δ model, Δ simulator)", "gain |Δ model| / |Δ simulator|", "clips"],
                           [[NAMES.get(k, k), f"{v['cosine']:.3f}", f"{v['gain']:.3f}", v["n_clips"]] for k, v in cf.items()]))
        parts.append(measured_on(f"{next(iter(cf.values()))['n_clips']} held-out clips: the difference between the two futures, "
                                 "frame by frame, from the model against the one the simulator renders (1 and 1 are perfect; "
                                 "the action-blind twin scores 0 by construction)"))
        numbers["counterfactual"] = cf
    if not cf and not counterfactual:
        parts.append("<p class='notrun'>not run: no clip of this store replays in the simulator.</p>")
    return "\n".join(parts), numbers


def headline(ev: dict) -> tuple[list, dict]:
    """Cards for the top of the report: PSNR at h = 1, 5, 10 and whether the model beats both baselines."""
    split = "heldout" if (ev.get("splits") or {}).get("heldout") else "val"
    res = (ev.get("splits") or {}).get(split) or {}
    if not res:
        return [], {}
    items = []
    for h in (2, 10):
        if h <= len(res["model"]["psnr"]):
            items.append((f"PSNR h={h} ({split})", f"{res['model']['psnr'][h - 1]:.1f} dB",
                          f"copy-last {res['copy_last']['psnr'][h - 1]:.1f} · action-blind "
                          f"{res.get('action_blind', {}).get('psnr', [np.nan] * h)[h - 1]:.1f}"))
    ok = bool(res.get("beats", {}).get("all_horizons_ge_2"))
    items.append(("beats both baselines at h ≥ 2", "yes" if ok else "no", f"{split}, {res['model']['n_clips']} clips"))
    return items, {"split": split, "beats_both_h_ge_2": ok}
