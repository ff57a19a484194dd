"""Closed-loop evaluation in the simulator: does planning in the model move things as planning in the world does?

For every task, in places the model was trained on (held-in) and places it never saw (held-out,
read from the run's lineage and the data's split), the same episodes (same reset seed → same
room, props and start) are played by four actors through ``SimEnv``:

* ``random``: uniform random knots in the planner's own control parametrisation;
* ``model``: the planner (CEM/MPPI) scoring rollouts imagined by the world model from its filtered
  state — it sees only the head camera and its own controls;
* ``oracle``: the same planner scoring rollouts in the true simulator from the true state (it
  reads the task's true progress; the ceiling the model planner is measured against);
* ``scripted``: the scripted person's task behaviour (the one that recorded the data).

Reported per task × split × actor: success rate, final progress, progress gain (final − start)
and, for planners, replan time. Every finished episode is appended to ``episodes.jsonl`` at once,
so an interrupted evaluation resumes where it stopped (rows from a different config are ignored).
Only the ``model`` rows depend on the checkpoint, so pointing a new run at an old ``--out`` reuses
the costly sim-oracle, random and scripted episodes and plays only the new model's.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import re
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.imagine.plan import SimCost

if TYPE_CHECKING:
    from egoworld.model import Config, WorldModel

METHODS = ("random", "model", "oracle", "scripted")
SPLITS = ("held_in", "held_out")


@dataclass
class ClosedLoopConfig:
    """What one closed-loop evaluation runs; every field is an option of `egoworld plan`."""

    tasks: tuple[str, ...] = ("push", "open_drawer", "pick_place", "stack")
    episodes: int = 30  # per task × split (and per method)
    oracle_episodes: int | None = None  # the sim-oracle is ~100× costlier per replan; None: as ``episodes``
    methods: tuple[str, ...] = METHODS
    splits: tuple[str, ...] = SPLITS
    max_steps: int = 90  # frames per episode (3 s at 30 fps; the scripted person needs 2–6 s from the table)
    render_size: int = 128  # the camera renders at this size; the model sees it area-scaled to its own
    planner: dict = field(default_factory=dict)  # PlannerConfig fields
    oracle_planner: dict = field(default_factory=dict)  # overrides of ``planner`` for the oracle only
    objective: dict = field(default_factory=dict)  # Objective fields for the world-model cost
    goal: bool = False  # score by latent distance to a goal image (the scripted person's success frame)
    context: int | None = None  # frames the model filters before each plan (None: the run's)
    seed: int = 0
    diagnose: bool = True  # rank agreement of the model's cost with the true cost, once per task × split

    def key(self) -> str:
        """A short hash of everything that changes an episode's outcome (resuming skips only matching rows)."""
        from egoworld.imagine.plan import Objective

        d = asdict(self)
        for k in ("episodes", "oracle_episodes", "methods", "splits", "tasks", "diagnose"):
            d.pop(k)
        base, oracle = _planner_cfgs(self)  # resolved: the same planner however it was spelled
        d.update(planner=asdict(base), oracle_planner=asdict(oracle), objective=asdict(Objective(**self.objective)))
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# A smoke run for the demo (~2 min on 2 cores): one task, 2 episodes per split, 1.5 s each, a small sim-oracle.
QUICK = dict(tasks=("push",), episodes=2, max_steps=45, planner=dict(samples=32, iterations=2),
             oracle_planner=dict(samples=8, iterations=1))


# ----------------------------------------------------------------------------- where to evaluate


def _index(name: Any) -> int:
    """``"place_07"`` → 7, ``"person_02"`` → 2 (sim places and people are generated from their index)."""
    m = re.search(r"(\d+)$", str(name))
    if m is None:
        raise ValueError(f"{name!r}: expected a simulated place/person id such as place_03")
    return int(m.group(1))


def places_from_run(run: str | Path) -> dict[str, list[int]]:
    """Held-in places and people (the run's training episodes) and held-out places (the data's split).

    Held-out places come from the episode store's ``meta/egoworld/splits.json`` that the run was
    trained from (its lineage names the data); when that store is gone, any place index the run
    never trained on is held out (places are generated from their index), so the next unseen one is used.
    """
    lin_path = runs.lineage_file(run)
    if lin_path is None:
        raise FileNotFoundError(f"{runs.resolve(run)}: no lineage.json — closed-loop evaluation needs to know which "
                                "places were trained on")
    lin = json.loads(lin_path.read_text())
    eps = lin.get("episodes", [])
    held_in = sorted({_index(e["place"]) for e in eps if "place" in e})
    people = sorted({_index(e["person"]) for e in eps if "person" in e})
    if not held_in:
        raise ValueError(f"{lin_path}: the training episodes name no places (a synthetic run?); "
                         "closed-loop evaluation needs a run trained on simulated sessions")
    held_out: list[int] = []
    why = "splits.json of the training data"
    data = Path(str(lin.get("data", "")))
    for splits in (data / "meta" / "egoworld" / "splits.json", data / "episodes" / "meta" / "egoworld" / "splits.json"):
        if splits.exists():
            held_out = sorted(_index(p) for p in json.loads(splits.read_text()).get("held_out_places", []))
            break
    held_out = [p for p in held_out if p not in held_in]
    if not held_out:
        held_out = [max(held_in) + 1]
        why = "no held-out place recorded; the next place index the run never trained on"
    return {"held_in": held_in, "held_out": held_out, "people": people or [0], "why_held_out": why}


@dataclass(frozen=True)
class EpisodeSpec:
    task: str
    split: str
    index: int
    place: int
    person: int
    reset_seed: int


def episode_specs(tasks: tuple[str, ...], splits: tuple[str, ...], episodes: int, where: dict[str, list[int]],
                  seed: int = 0) -> list[EpisodeSpec]:
    """The same list for every actor: places cycle fastest, then people; reset seeds from (seed, task, split, i)."""
    out = []
    people = where["people"]
    for ti, task in enumerate(tasks):
        for si, split in enumerate(splits):
            places = where[split]
            for i in range(episodes):
                rs = int(np.random.SeedSequence([seed, ti, si, i]).generate_state(1)[0] >> 1)
                out.append(EpisodeSpec(task, split, i, places[i % len(places)], people[(i // len(places)) % len(people)], rs))
    return out


# ----------------------------------------------------------------------------- running episodes

def planning_model(run: str | Path) -> tuple[WorldModel, Config]:
    """The run's model and config for planning (its decoder never runs), torch set to the run's threads.

    Load it once and pass it to ``run_episode`` / ``cost_agreement`` for every episode it plays."""
    import torch

    model, mcfg = runs.load_model(run, decoder=False)
    # Small batched steps: one thread (on a shared 2-core machine, two ran ~10× slower, see bench/plan.py).
    torch.set_num_threads(mcfg.threads or 1)
    return model, mcfg


def _planner_cfgs(cfg: ClosedLoopConfig):
    from egoworld.imagine.plan import PlannerConfig

    base = PlannerConfig(**cfg.planner)
    return base, PlannerConfig(**(asdict(base) | cfg.oracle_planner))


def make_policy(spec: EpisodeSpec, method: str, cfg: ClosedLoopConfig, model: tuple[WorldModel, Config] | None = None):
    """The actor ``method`` plays as, for one episode (``egoworld.imagine.policy``); ``model``: the
    ``planning_model`` the ``model`` actor plans with."""
    from egoworld.imagine.plan import Objective
    from egoworld.imagine.policy import PlannerPolicy, RandomKnots, Scripted, sim_cost, world_model_cost

    base, oracle = _planner_cfgs(cfg)
    if method == "random":
        return RandomKnots(base)
    if method == "scripted":
        return Scripted()
    if method == "oracle":
        return PlannerPolicy(oracle, sim_cost(Objective(**cfg.objective).terminal), name="oracle")
    if method == "model":
        if model is None:
            raise ValueError("the model actor needs the run's model: make_policy(..., model=planning_model(run))")
        model, mcfg = model
        goal = None
        if cfg.goal:
            from egoworld.imagine.goals import goal_image

            goal = goal_image(spec.task, spec.place, spec.person, spec.reset_seed, cfg.render_size, max_steps=300)
        # no goal frame (the scripted person never finished in the twin): fall back to the reward head
        objective = Objective(**({"goal": 1.0, "progress": 0.0} if goal is not None else {}) | cfg.objective).for_task(spec.task)
        return PlannerPolicy(base, world_model_cost(model, cfg.context or mcfg.context, objective, goal), name="model")
    raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")


def run_episode(run: str, spec: EpisodeSpec, method: str, cfg: ClosedLoopConfig, record: bool = False,
                model: tuple[WorldModel, Config] | None = None) -> dict:
    """Play one episode with one actor; returns its outcome row (and the frames when ``record``).

    ``model``: the run's ``planning_model``, loaded here when the ``model`` actor needs it and none is given."""
    import egoworld.capture.sim  # noqa: F401
    from egoworld.capture.sim.env import SimEnv
    from egoworld.imagine.policy import rollout

    if method == "model" and model is None:
        model = planning_model(run)
    policy = make_policy(spec, method, cfg, model)
    env = SimEnv(spec.task, spec.place, spec.person, width=cfg.render_size, height=cfg.render_size, max_steps=cfg.max_steps)
    try:
        ep = rollout(policy, env, key=spec.reset_seed % (2**31), seed=spec.reset_seed, record=record)
    finally:
        env.close()
    rs = ep["replan_seconds"]
    row = {**asdict(spec), "method": method, "success": ep["success"], "success_step": ep["success_step"],
           "progress_start": round(ep["progress_start"], 4), "progress": round(ep["progress_end"], 4),
           "progress_max": round(ep["progress_max"], 4), "steps": ep["steps"], "seconds": round(ep["seconds"], 2),
           "replans": len(rs), "replan_s_mean": round(float(np.mean(rs)), 4) if rs else None,
           "replan_s_max": round(float(np.max(rs)), 4) if rs else None, "config": cfg.key()}
    if method == "model":  # only the model's rows depend on the checkpoint: the others can be shared between runs
        row["checkpoint"] = str(runs.resolve(run).resolve())
    if record:
        row["_frames"] = ep["frames"]
    return row


def _job(run: str, spec: EpisodeSpec, methods: tuple[str, ...], cfg: ClosedLoopConfig, threads: int) -> list[dict]:
    """One episode's actors in a worker process (the model loads per job: milliseconds beside an episode)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    model = planning_model(run) if "model" in methods else None
    return [run_episode(run, spec, m, cfg, model=model) for m in methods]


def cost_agreement(run: str, spec: EpisodeSpec, cfg: ClosedLoopConfig, candidates: int = 16,
                   model: tuple[WorldModel, Config] | None = None) -> dict[str, float]:
    """How well the model's cost ranks candidate plans: Spearman ρ against the sim-oracle's cost on the
    same ``candidates`` sequences from the episode's start state (the planner's own sampling
    distribution). ρ near 0 means the model planner cannot do better than chance, whatever the planner.

    Also, to say *why*: ρ of the progress cost with only the imagined latent [h, z] moving
    (``spearman_latent``), with only the imagined body part moving (``spearman_body``), and of a reach
    cost from the imagined wrists to the task's true target point (``spearman_if_target_known``, sim
    truth: what a model that knew where the object is could rank with its own imagined hands)."""
    from scipy.stats import spearmanr

    from egoworld.capture.sim.catalog import person as person_spec
    from egoworld.capture.sim.env import SimEnv
    from egoworld.capture.sim.tasks import REACH_RANGE
    from egoworld.imagine.plan import Objective, Planner, WorldModelCost, progress_cost_parts
    from egoworld.model.nets import to_head_frame
    from egoworld.state import HEAD_P, HEAD_Q

    model, mcfg = model or planning_model(run)
    base, _ = _planner_cfgs(cfg)
    p = Planner(base)
    p.reset(spec.reset_seed % (2**31))
    controls = p.param.controls(p.sample(p.mean, base.init_std)[:candidates])
    env = SimEnv(spec.task, spec.place, spec.person, width=cfg.render_size, height=cfg.render_size, max_steps=cfg.max_steps)
    objective = Objective(**cfg.objective).for_task(spec.task)
    hand_scale = person_spec(spec.person).hand_scale
    try:
        obs, _ = env.reset(seed=spec.reset_seed)
        wm = WorldModelCost(model, hand_scale, cfg.context or mcfg.context, objective)
        wm.observe(obs["image"], state=obs.get("state"), objects=obs.get("objects"))
        c_model, c_true = wm(controls), SimCost(env, objective.terminal)(controls)
        target = env.task.reach_point()
    finally:
        env.close()

    def rho(c: np.ndarray) -> float:
        return round(float(np.nan_to_num(spearmanr(c, c_true).statistic)), 3)

    out = {"spearman": rho(c_model), "candidates": len(controls),
           "true_cost_spread": round(float(c_true.max() - c_true.min()), 4),
           "model_cost_spread": round(float(c_model.max() - c_model.min()), 4)}
    parts = progress_cost_parts(model, wm.start_state(), controls, hand_scale, objective.terminal, objective.approach)
    for k in ("latent", "body", "track"):
        if k in parts:
            out[f"spearman_{k}"] = rho(parts[k])
    if "wrists" in parts:
        import torch

        st = torch.from_numpy(np.asarray(obs["state"], dtype=np.float32))
        goal = to_head_frame(torch.from_numpy(target.astype(np.float32)), st[HEAD_P], st[HEAD_Q]).numpy()
        reach = np.clip(1 - np.linalg.norm(parts["wrists"] - goal, axis=-1).min(-1) / REACH_RANGE, 0, 1)  # TaskState's reach term
        out["spearman_if_target_known"] = rho(-(reach.mean(1) + objective.terminal * reach[:, -1]))
    return out


def cell_agreement(run: str, specs: list[EpisodeSpec], cfg: ClosedLoopConfig, candidates: int = 16,
                   model: tuple[WorldModel, Config] | None = None) -> dict[str, Any]:
    """``cost_agreement`` from each of a cell's first start states; ``spearman`` (and each part's ρ) is
    their mean (one start's 16 plans give a noisy ρ: a few starts say more about whether the model can plan)."""
    model = model or planning_model(run)
    per = [cost_agreement(run, s, cfg, candidates, model) for s in specs]
    out: dict[str, Any] = {"spearman": round(float(np.mean([a["spearman"] for a in per])), 3),
                           "per_start": [a["spearman"] for a in per], "starts": len(per), "candidates": candidates,
                           "true_cost_spread": round(float(np.mean([a["true_cost_spread"] for a in per])), 4),
                           "model_cost_spread": round(float(np.mean([a["model_cost_spread"] for a in per])), 4)}
    for k in ("spearman_latent", "spearman_body", "spearman_track", "spearman_if_target_known"):
        if all(k in a for a in per):
            out[k] = round(float(np.mean([a[k] for a in per])), 3)
    return out


AGREEMENT_STARTS = 4  # start states per task × split cell for the cost agreement


# ----------------------------------------------------------------------------- the table


def summarise(rows: list[dict], cfg: ClosedLoopConfig) -> dict[str, Any]:
    """task → split → method → {n, success, progress, progress_gain, ...}; plus overall per split and method."""

    def agg(rs: list[dict]) -> dict[str, Any]:
        if not rs:
            return {"n": 0}
        succ = [r["success"] for r in rs]
        steps = [r["success_step"] for r in rs if r["success_step"] is not None]
        out = {"n": len(rs), "success": round(float(np.mean(succ)), 4),
               "progress": round(float(np.mean([r["progress"] for r in rs])), 4),
               "progress_gain": round(float(np.mean([r["progress"] - r["progress_start"] for r in rs])), 4),
               "progress_max": round(float(np.mean([r["progress_max"] for r in rs])), 4),
               "steps_to_success": round(float(np.mean(steps)), 1) if steps else None,
               "seconds_per_episode": round(float(np.mean([r["seconds"] for r in rs])), 2)}
        rp = [r["replan_s_mean"] for r in rs if r.get("replan_s_mean") is not None]
        if rp:
            out["replan_s"] = round(float(np.mean(rp)), 4)
            out["replan_s_max"] = round(float(max(r["replan_s_max"] for r in rs if r.get("replan_s_max") is not None)), 4)
        return out

    table: dict[str, Any] = {}
    for t in cfg.tasks:
        table[t] = {s: {m: agg([r for r in rows if r["task"] == t and r["split"] == s and r["method"] == m])
                        for m in cfg.methods} for s in cfg.splits}
    overall = {s: {m: agg([r for r in rows if r["split"] == s and r["method"] == m]) for m in cfg.methods} for s in cfg.splits}
    ratio = {}
    for s in cfg.splits:
        o, w = overall[s].get("oracle", {}), overall[s].get("model", {})
        if o.get("n") and w.get("n"):
            ratio[s] = {"success": round(w["success"] / o["success"], 3) if o["success"] > 0 else None,
                        "progress_gain": round(w["progress_gain"] / o["progress_gain"], 3) if o["progress_gain"] > 0 else None}
    return {"table": table, "overall": overall, "model_over_oracle": ratio}


def _rows(result: dict[str, Any], fmt: Callable[[dict], str], all_label: str = "all") -> list[tuple[str, str, list[str]]]:
    """(task, split, one formatted cell per method) for every task × split, then the overall rows."""
    methods = result["config"]["methods"]
    rows = [(task, s, cells) for task, by in result["table"].items() for s, cells in by.items()]
    rows += [(all_label, s, cells) for s, cells in result["overall"].items()]
    return [(task, s, ["—" if not cells.get(m, {}).get("n") else fmt(cells[m]) for m in methods]) for task, s, cells in rows]


def print_table(result: dict[str, Any], echo: Callable[[Any], None] | None = None) -> None:
    """The closed-loop table with rich: one row per task × split, success % / progress gain per actor."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"closed loop: success % · progress gain (final progress) — {result['config']['max_steps']} frames")
    t.add_column("task")
    t.add_column("places")
    for m in result["config"]["methods"]:
        t.add_column(m, justify="right")
    for task, s, cells in _rows(result, lambda c: f"{100 * c['success']:.0f}% · {c['progress_gain']:+.2f} ({c['progress']:.2f}) n={c['n']}"):
        t.add_row(task, s, *cells)
    (echo or Console().print)(t)


def markdown_table(result: dict[str, Any]) -> str:
    """The same table as ``print_table`` in Markdown (for docs and reports): success % · progress gain (n)."""
    methods = result["config"]["methods"]
    lines = ["| task | places | " + " | ".join(methods) + " |", "|---|---|" + "---:|" * len(methods)]
    for task, s, cells in _rows(result, lambda c: f"{100 * c['success']:.0f} % · {c['progress_gain']:+.2f} ({c['n']})", "**all**"):
        lines.append(f"| {task} | {s.replace('_', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the whole evaluation


def closed_loop_eval(run: str | Path, tasks: tuple[str, ...] | list[str] | None = None, episodes: int | None = None,
                     places: tuple[str, ...] | list[str] | None = None, methods: tuple[str, ...] | list[str] | None = None,
                     seed: int = 0, progress: bool = True, out: str | Path | None = None, video: bool = True,
                     workers: int = 1, quick: bool = False, config: ClosedLoopConfig | None = None,
                     echo: Callable[[str], None] = print, **overrides: Any) -> dict[str, Any]:
    """Run (or resume) the closed-loop evaluation of ``run``; write ``results.json`` and return it.

    ``places``: which splits ("held_in", "held_out"); ``overrides``: any other ``ClosedLoopConfig``
    field (``max_steps``, ``planner={...}``, ...). ``quick``: start from ``QUICK`` (push, 2 episodes
    × 45 frames, smaller planners) — for the demo. Writes to ``out`` (default ``RUN/closed_loop``):
    ``episodes.jsonl`` (one row per episode and actor, appended as they finish), ``results.json``
    (the table over exactly the requested episodes) and, with ``video``, ``episode_model.mp4`` (the
    first planned episode, as the head camera saw it).
    """
    run = str(run)
    base = asdict(config or ClosedLoopConfig())
    if quick:
        base.update(QUICK)
    fields = {**base, **{k: v for k, v in dict(tasks=tasks, episodes=episodes, splits=places, methods=methods, seed=seed).items()
                         if v is not None}, **overrides}
    for k in ("tasks", "splits", "methods"):
        if k in fields:
            fields[k] = tuple(fields[k])
    cfg = ClosedLoopConfig(**fields)
    bad = [m for m in cfg.methods if m not in METHODS] + [s for s in cfg.splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown method/split {bad}; methods: {', '.join(METHODS)}; places: {', '.join(SPLITS)}")
    from egoworld.capture.sim.catalog import TASKS

    bad = [t for t in cfg.tasks if t not in TASKS]
    if bad:
        raise ValueError(f"unknown task(s) {bad}; known: {', '.join(TASKS)}")
    t0 = time.time()
    out = Path(out) if out else Path(run) / "closed_loop"
    out.mkdir(parents=True, exist_ok=True)
    where = places_from_run(run)
    n_oracle = cfg.episodes if cfg.oracle_episodes is None else cfg.oracle_episodes
    specs = episode_specs(cfg.tasks, cfg.splits, cfg.episodes, where, cfg.seed)
    key, ckpt = cfg.key(), str(runs.resolve(run).resolve())
    log = out / "episodes.jsonl"
    done: dict[tuple, dict] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if r.get("config") == key and (r["method"] != "model" or r.get("checkpoint") == ckpt):
                done[(r["task"], r["split"], r["index"], r["method"])] = r
    wanted = {(s.task, s.split, s.index, m) for s in specs for m in cfg.methods if m != "oracle" or s.index < n_oracle}
    done = {k: r for k, r in done.items() if k in wanted}  # the table is exactly what was asked for
    jobs = []
    for s in specs:
        ms = tuple(m for m in cfg.methods if (s.task, s.split, s.index, m) in wanted and (s.task, s.split, s.index, m) not in done)
        if ms:
            jobs.append((s, ms))
    total = sum(len(ms) for _, ms in jobs)
    base_cfg, oracle_cfg = _planner_cfgs(cfg)
    echo(f"closed loop: {run} · tasks {', '.join(cfg.tasks)} · held-in places {where['held_in']} · held-out {where['held_out']} "
         f"({where['why_held_out']}) · {total} episodes to play ({len(done)} already in {log})")
    rows = list(done.values())

    def emit(r: dict) -> None:
        rows.append(r)
        with open(log, "a") as f:
            f.write(json.dumps(r) + "\n")
        if progress:
            echo(f"  {r['task']:<11} {r['split']:<8} #{r['index']:<3} {r['method']:<8} "
                 f"{'success' if r['success'] else 'fail   '} progress {r['progress_start']:.2f}→{r['progress']:.2f} "
                 f"({r['seconds']:.1f} s{', replan %.3f s' % r['replan_s_mean'] if r.get('replan_s_mean') else ''})")

    model = planning_model(run) if "model" in cfg.methods else None  # loaded once for every episode here
    agreement: dict[str, Any] = {}
    if "model" in cfg.methods and cfg.diagnose and not cfg.goal:  # before any episode: can the model rank plans here?
        for t in cfg.tasks:
            for sp in cfg.splits:
                cell = [s for s in specs if s.task == t and s.split == sp][:AGREEMENT_STARTS]
                if cell:
                    agreement.setdefault(t, {})[sp] = cell_agreement(run, cell, cfg, model=model)
        echo(f"model cost vs true cost (Spearman ρ over 16 candidate plans, mean of each cell's first "
             f"{AGREEMENT_STARTS} starts): " + "; ".join(f"{t} {sp} {v['spearman']:+.2f}" for t, by in agreement.items()
                                                       for sp, v in by.items()))
        echo("  which part ranks (ρ: imagined latent only / imagined body only / imagined hands to the true target): " +
             "; ".join(f"{t} {sp} {v.get('spearman_latent', float('nan')):+.2f} / {v.get('spearman_body', float('nan')):+.2f} / "
                       f"{v.get('spearman_if_target_known', float('nan')):+.2f}" for t, by in agreement.items() for sp, v in by.items()))
        if any("spearman_track" in v for by in agreement.values() for v in by.values()):
            echo("  the goal-conditioned cost on the imagined tracked object alone (ρ): " +
                 "; ".join(f"{t} {sp} {v['spearman_track']:+.2f}" for t, by in agreement.items() for sp, v in by.items()))

    if workers <= 1:
        for s, ms in jobs:
            for m in ms:
                emit(run_episode(run, s, m, cfg, model=model))
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_job, run, s, ms, cfg, 1) for s, ms in jobs]
            for fut in as_completed(futures):
                for r in fut.result():
                    emit(r)

    videos = []
    if video and "model" in cfg.methods and specs:
        r = run_episode(run, specs[0], "model", cfg, record=True, model=model)
        frames = r.pop("_frames")
        from egoworld.video import VideoWriter

        path = out / "episode_model.mp4"
        with VideoWriter(path, cfg.render_size, cfg.render_size, 30.0) as vw:
            for k, f in enumerate(frames):
                vw.write(f, int(round(k / 30.0 * 1e9)))
        videos.append({"path": path.name, "task": r["task"], "split": r["split"], "success": r["success"],
                       "progress": r["progress"]})
    result = {"run": run, "checkpoint": ckpt, "config": asdict(cfg) | {"key": key},
              "planner": asdict(base_cfg), "oracle_planner": asdict(oracle_cfg), "places": where,
              **summarise(rows, cfg), "cost_agreement": agreement, "videos": videos, "seconds": round(time.time() - t0, 1),
              "episodes_file": log.name}
    model_rows = [r for r in rows if r["method"] == "model" and r.get("replan_s_mean") is not None]
    if model_rows:
        result["replan_seconds_model"] = round(float(np.mean([r["replan_s_mean"] for r in model_rows])), 4)
    write_json(out / "results.json", result)
    echo(f"wrote {out / 'results.json'} ({result['seconds']} s)")
    return result


__all__ = [
    "METHODS",
    "QUICK",
    "SPLITS",
    "ClosedLoopConfig",
    "EpisodeSpec",
    "SimCost",
    "make_policy",
    "closed_loop_eval",
    "cell_agreement",
    "cost_agreement",
    "episode_specs",
    "markdown_table",
    "places_from_run",
    "planning_model",
    "print_table",
    "run_episode",
    "summarise",
]
