"""``egoworld improve RUN --data DATA --task push --rounds N``: the interaction loop (DreamerV3's recipe).

A model trained on people's recordings is wrong exactly where a planner searches: actions nobody
recorded. So the agent acts: each round, the world-model planner (with exploration noise) plays
sessions in the simulator — recorded by the rig like any capture (every sensor on its own clock,
consent, truth), with ``source: interaction`` and what acted (run, checkpoint, its sha256, round,
noise) in session.json — they are synced and appended to the episode store, the model is
fine-tuned from its last weights on the grown store, and its closed-loop success is measured. The
result, ``OUT/improve.json``, is success against the real (simulator) frames used, round by round.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egoworld import runs
from egoworld._atomic import write_json
from egoworld.state import body_state


@dataclass
class ImproveConfig:
    """Every knob of the loop; each is an option of ``egoworld improve``."""

    task: str = "push"
    rounds: int = 2
    sessions: int = 8  # interaction sessions per round (spread over the run's training places and people)
    seconds: float = 12.0  # per session (the person looks around — and with start "walk" walks up — first)
    start: str = "table"  # where sessions start (capture sim --start): at the table, as closed-loop episodes do
    size: int | None = None  # the rig's camera resolution (None: the store's, which holds one resolution per camera)
    noise: float = 0.3  # exploration: Gaussian noise on the planned columns, in units of their half-range
    head_noise: float = 0.04  # rad/frame: smooth random head turns while the agent acts (a still head gives sync
    # nothing to correlate: image rotation against the gyro needs the head to move)
    steps: int = 150  # fine-tuning steps per round
    eval_episodes: int = 6  # closed-loop episodes per round (held-in places), from the same starts every round
    max_steps: int = 90
    planner: dict = field(default_factory=lambda: dict(samples=32, iterations=2))
    objective: dict = field(default_factory=dict)  # Objective fields of the planner's cost (e.g. track=1, progress=0)
    seed: int = 0
    workers: int = 1


class _RigEnv:
    """What a ``Policy`` needs of a running capture: the simulator, its task, the person, the camera frame."""

    def __init__(self, episode: Any, person: int) -> None:
        self.person = person
        self.sim, self.task = episode.sim, episode.task
        self.task_name = episode.task.task

    def obs(self) -> dict[str, np.ndarray]:
        return {"image": self.sim.render(), "state": body_state(self.sim.body_pose()),
                "objects": self.task.track_points().astype(np.float32).ravel()}


def planner_agent(model: Any, context: int, planner_cfg: Any, noise: float, key: int, person: int,
                  head_noise: float = 0.0, objective: dict | None = None) -> Callable[[Any], Iterator[np.ndarray]]:
    """An ``act(episode)`` for ``capture_session``: the world-model planner (scoring by ``objective``), its plan
    perturbed by ``noise`` and, with ``head_noise``, the head turning smoothly at random (AR(1) rates, rad/frame)."""
    from egoworld.imagine.plan import Objective
    from egoworld.imagine.policy import PlannerPolicy, world_model_cost

    def act(episode: Any) -> Iterator[np.ndarray]:
        env = _RigEnv(episode, person)
        policy = PlannerPolicy(planner_cfg, world_model_cost(model, context, Objective(**(objective or {})).for_task(env.task_name)))
        rng = np.random.default_rng([key, 7])
        obs = env.obs()
        policy.reset(env, obs, key)
        param = policy.mpc.planner.param  # the planned columns and their half-ranges
        cols, half = param.cols, param.half
        turn = np.zeros(3)
        while True:
            c = np.asarray(policy.act(obs), dtype=np.float64).copy()
            if noise:
                c[cols] += noise * half * rng.standard_normal(len(cols))
            if head_noise:
                turn = 0.9 * turn + np.sqrt(1 - 0.9**2) * head_noise * rng.standard_normal(3)
                c[3:6] += turn
            yield c
            obs = env.obs()  # the recorder stepped the simulator with c
            policy.observe(c, obs)

    return act


def _success(run: str, cfg: ImproveConfig, specs: list) -> dict[str, float]:
    from egoworld.evaluate.closed_loop import ClosedLoopConfig, planning_model, run_episode

    cl = ClosedLoopConfig(tasks=(cfg.task,), max_steps=cfg.max_steps, planner=dict(cfg.planner), seed=cfg.seed,
                          objective=dict(cfg.objective))
    model = planning_model(run)
    rows = [run_episode(run, s, "model", cl, model=model) for s in specs]
    return {"success": float(np.mean([r["success"] for r in rows])),
            "progress_gain": float(np.mean([r["progress"] - r["progress_start"] for r in rows])), "episodes": len(rows)}


def _store_size(store: Path) -> int:
    from egoworld.dataset.store import open_store

    st = open_store(store)
    h, w = st.info["features"][st.video_key]["shape"][:2]
    if h != w:
        raise ValueError(f"{store}: the rig records square frames, the store holds {w}×{h}")
    return int(h)


def _store_frames(store: Path) -> int:
    from egoworld.dataset.store import open_store

    return int(sum(r["length"] for r in open_store(store).episode_rows()))


def improve(run: str | Path, data: str | Path, out: str | Path, cfg: ImproveConfig | None = None,
            echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the loop; ``data`` is the raw data folder whose ``episodes/`` store ``run`` was trained on."""
    from rich.console import Console

    from egoworld.capture.sim.catalog import TASKS
    from egoworld.capture.sim.record import SessionConfig, capture_session
    from egoworld.dataset.build import build_store
    from egoworld.evaluate.closed_loop import episode_specs, places_from_run, planning_model
    from egoworld.imagine.plan import PlannerConfig
    from egoworld.sync.batch import run_batch
    from egoworld.train.loop import train

    cfg = cfg or ImproveConfig()
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r} (known: {', '.join(TASKS)})")
    data, out = Path(data), Path(out)
    store = data / "episodes"
    if not (store / "meta" / "info.json").exists():
        raise FileNotFoundError(f"{store}: no episode store (run `egoworld episodes {data}` first)")
    out.mkdir(parents=True, exist_ok=True)
    where = places_from_run(run)
    specs = episode_specs((cfg.task,), ("held_in",), cfg.eval_episodes, where, cfg.seed)
    planner_cfg = PlannerConfig(**cfg.planner, seed=cfg.seed)
    current = str(runs.resolve(run))
    frames = _store_frames(store)
    size = cfg.size or _store_size(store)
    t0 = time.time()
    history = [{"round": 0, "checkpoint": current, "real_frames": frames, "interaction_frames": 0,
                **_success(current, cfg, specs)}]
    echo(f"round 0: {frames} frames from capture · success {history[0]['success']:.0%} · "
         f"progress gain {history[0]['progress_gain']:+.3f}")

    def save() -> dict[str, Any]:
        """improve.json as it stands (written after every round: an interrupted loop keeps what it measured)."""
        res = {"config": asdict(cfg), "run": str(run), "data": str(data), "rounds": history,
               "seconds": round(time.time() - t0, 1)}
        write_json(out / "improve.json", res)
        return res

    result = save()
    interaction = 0
    for r in range(1, cfg.rounds + 1):
        model, mcfg = planning_model(current)
        sha = runs.model_sha256(Path(current))
        sessions = []
        for i in range(cfg.sessions):
            place = where["held_in"][i % len(where["held_in"])]
            person = where["people"][(i // len(where["held_in"])) % len(where["people"])]
            scfg = SessionConfig(index=i, seed=10_000 + 100 * cfg.seed + r, place=place, person=person, task=cfg.task,
                                 seconds=cfg.seconds, width=size, height=size, start=cfg.start)
            key = int(np.random.SeedSequence([cfg.seed, r, i]).generate_state(1)[0] >> 1)
            meta = {"source": "interaction", "interaction": {"run": str(run), "checkpoint": current, "model_sha256": sha,
                                                             "round": r, "noise": cfg.noise, "planner": asdict(planner_cfg)}}
            sessions.append(capture_session(data, scfg, act=planner_agent(model, mcfg.context, planner_cfg, cfg.noise, key, person,
                                                                      cfg.head_noise, cfg.objective),
                                            extra_meta=meta))
            echo(f"  round {r}: recorded {sessions[-1].name}")
        reports = run_batch(sessions, data / "aligned", cfg.workers, Console(quiet=True))
        ok = sum(1 for x in reports if x.get("verdict") != "failed")
        build_store(data, store, workers=cfg.workers)
        new_frames = _store_frames(store)
        interaction += new_frames - frames
        frames = new_frames
        mc = mcfg.replace(steps=cfg.steps, minutes=0.0, seed=cfg.seed + r, extra=dict(mcfg.extra, data=str(store)))
        run_dir = out / f"round_{r:02d}"
        train(mc, str(store), run_dir, progress=False, echo=lambda *_: None, init_from=current)
        current = str(runs.resolve(run_dir))
        res = _success(current, cfg, specs)
        history.append({"round": r, "checkpoint": current, "real_frames": frames, "interaction_frames": interaction,
                        "sessions": len(sessions), "synced": ok, **res})
        echo(f"round {r}: +{len(sessions)} sessions ({ok} synced) → {frames} frames · success {res['success']:.0%} · "
             f"progress gain {res['progress_gain']:+.3f}")
        result = save()
    return result


__all__ = ["ImproveConfig", "improve", "planner_agent"]
