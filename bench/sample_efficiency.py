"""Sample efficiency against a model-free agent: success against real (simulator) frames, world model vs PPO.

    python bench/sample_efficiency.py --out out/sample_efficiency [--task push] [--ppo-frames 30000]
        [--eval-every 3000] [--eval-episodes 6] [--size 64] [--seed 0]
        (--run RUN --data DATA [--rounds 2 --sessions 8 --steps 150] | --improve-json OUT/improve.json)

The central claim of model-based RL is that a model makes every real frame count. Both agents act
on the same ``SimEnv`` task (start "table", 90-frame episodes, reward = progress delta, terminated on
success) and are scored on the same starts: the closed-loop episode list of the held-in places
(``episode_specs``: same place, person and reset seed), played through the same ``rollout``.

* **World model**: the interaction loop (``egoworld.improve``) from the human capture — its real
  frames are the capture's plus every interaction session's (improve.json, round by round); run
  here from ``--run``/``--data`` (in a second process, beside PPO) or read from ``--improve-json``.
* **PPO** (stable-baselines3, ``MultiInputPolicy``: the image through NatureCNN, state and object
  tracker flattened) on the observation dict of ``SimEnv``. By default it acts in the planner's own
  parametrisation (``--ppo-dims hands``: wrist translations and grips, half the control limits, each
  action held ``--ppo-repeat 3`` frames, head at rest) so that both agents search the same action
  space; ``--ppo-dims all --ppo-repeat 1 --ppo-scale 1`` is the raw 20-D control box. Trained for
  ``--ppo-frames`` real frames (every simulator step counts); evaluated before training and then at
  the first update after every ``--eval-every`` frames with the deterministic policy; evaluation
  frames are reported apart and never counted as training frames. Seeded, one torch thread, CPU.

Writes ``OUT/sample_efficiency.json`` (both curves, the config, date, commit, command),
``OUT/sample_efficiency.png`` (success vs real frames, log x) and ``OUT/report.html``; prints the
real frames each agent needed to reach ``--threshold`` success (first evaluation at or above it)
and their ratio — or that it was not reached within the frames spent. The goal: the world-model
agent reaches 50 % with ≥ 10× fewer real frames.
"""
from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import egoworld.capture.sim  # noqa: F401  (off-screen GL backend before mujoco loads)
from egoworld._atomic import atomic_path, write_json

NATURE_CNN_MIN = 36  # NatureCNN's three convolutions (8/4, 4/2, 3/1) need at least 36 × 36 pixels


@dataclass
class PPOConfig:
    """PPO's knobs (defaults sized for 90-frame episodes: 30 decisions of 3 frames, a rollout ≈ 8.5 episodes)."""

    frames: int = 30_000  # real simulator frames to train for (the last rollout may overshoot by < n_steps·repeat)
    eval_every: int = 3_000
    dims: str = "hands"  # the planner's parametrisation (egoworld.imagine.plan.DIMS)
    scale: float = 0.5  # share of the control limits (the planner's default)
    repeat: int = 3  # frames each action is held (the planner's knot length)
    n_steps: int = 256  # decisions per rollout
    batch_size: int = 64
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.97  # ≈ 33 decisions: an episode
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    log_std_init: float = -0.5  # actions in [-1, 1]: start with std 0.6, not 1 (which mostly clips)
    cnn_dim: int = 256  # NatureCNN features
    net_arch: tuple[int, ...] = (64, 64)


# ----------------------------------------------------------------------------- where both agents are scored


def eval_places(run: str | None, places: str | None, people: str | None) -> dict[str, list[int]]:
    """Held-in places and people: the run's (as the interaction loop evaluates), or the given lists."""
    if run and Path(run).exists() and not places:
        from egoworld.evaluate.closed_loop import places_from_run

        where = places_from_run(run)
        return {"held_in": where["held_in"], "people": where["people"]}
    def ints(s: str) -> list[int]:
        return [int(x) for x in str(s).split(",") if x.strip()]

    return {"held_in": ints(places or "0,1,2,3"), "people": ints(people or "0")}


def eval_specs(task: str, episodes: int, where: dict[str, list[int]], seed: int) -> list:
    """The interaction loop's own evaluation starts (``improve``: held-in places, ``episode_specs``)."""
    from egoworld.evaluate.closed_loop import episode_specs

    return episode_specs((task,), ("held_in",), episodes, {**where, "held_out": []}, seed)


# ----------------------------------------------------------------------------- PPO


def make_ppo_env(task: str, size: int, max_steps: int, cfg: PPOConfig, where: dict[str, list[int]], seed: int):
    """``SimEnv`` with the action in the planner's parametrisation; each reset draws a held-in place and person."""
    import gymnasium as gym
    from gymnasium import spaces

    from egoworld.capture.sim.env import SimEnv
    from egoworld.imagine.plan import Parametrisation

    class PlannerActions(gym.Wrapper):
        """Knots in [-1, 1] → controls held ``repeat`` frames; ``frames`` counts every simulator step."""

        def __init__(self, env: SimEnv) -> None:
            super().__init__(env)
            self.param = Parametrisation(cfg.dims, cfg.repeat, cfg.scale)
            self.action_space = spaces.Box(-1.0, 1.0, (self.param.dim,), np.float32)
            self.frames = 0
            self.rng = np.random.default_rng([seed, 11])

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            place = int(self.rng.choice(where["held_in"]))
            person = int(self.rng.choice(where["people"]))
            return self.env.reset(seed=seed, options={"place": place, "person": person, **(options or {})})

        def step(self, action):
            total = 0.0
            for control in self.param.controls(np.asarray(action, dtype=np.float64).reshape(1, -1)):  # (repeat, 20)
                obs, r, terminated, truncated, info = self.env.step(control)
                self.frames += 1
                total += r
                if terminated or truncated:
                    break
            return obs, total, terminated, truncated, info

    return PlannerActions(SimEnv(task, where["held_in"][0], where["people"][0], width=size, height=size,
                                 max_steps=max_steps))


class PPOActor:
    """A trained PPO model as an ``egoworld.imagine.policy`` actor, so it plays the closed-loop ``rollout``."""

    name = "ppo"

    def __init__(self, model: Any, vecnorm: Any, cfg: PPOConfig) -> None:
        from egoworld.imagine.plan import Parametrisation

        self.model, self.vecnorm = model, vecnorm
        self.param = Parametrisation(cfg.dims, cfg.repeat, cfg.scale)
        self.queue: list[np.ndarray] = []
        self.replan_seconds: list[float] = []

    def reset(self, env: Any, obs: dict, key: int) -> None:
        self.queue = []

    def act(self, obs: dict) -> np.ndarray:
        if not self.queue:
            o = self.vecnorm.normalize_obs({k: v[None] for k, v in obs.items()})
            knot, _ = self.model.predict(o, deterministic=True)
            self.queue = list(self.param.controls(np.asarray(knot, dtype=np.float64).reshape(1, -1)))
        return self.queue.pop(0)

    def observe(self, control: np.ndarray, obs: dict) -> None:
        pass


def evaluate_actor(actor: Any, specs: list, size: int, max_steps: int) -> dict[str, float]:
    """Success, progress gain and return over the episode list (the same starts every time)."""
    from egoworld.capture.sim.env import SimEnv
    from egoworld.imagine.policy import rollout

    rows = []
    for s in specs:
        env = SimEnv(s.task, s.place, s.person, width=size, height=size, max_steps=max_steps)
        try:
            rows.append(rollout(actor, env, key=s.reset_seed % (2**31), seed=s.reset_seed))
        finally:
            env.close()
    return {"success": float(np.mean([r["success"] for r in rows])),
            "progress_gain": float(np.mean([r["progress_end"] - r["progress_start"] for r in rows])),
            "return": float(np.mean([r["return"] for r in rows])), "episodes": len(rows),
            "eval_frames": int(sum(r["steps"] for r in rows))}


def ppo_curve(task: str, size: int, max_steps: int, cfg: PPOConfig, specs: list, where: dict[str, list[int]],
              seed: int, echo=print) -> dict[str, Any]:
    """Train PPO one rollout at a time; evaluate before training and after the first update past each ``eval_every``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    if size < NATURE_CNN_MIN:
        raise ValueError(f"--size {size}: PPO's NatureCNN needs images of at least {NATURE_CNN_MIN}×{NATURE_CNN_MIN}")
    torch.set_num_threads(1)
    env = make_ppo_env(task, size, max_steps, cfg, where, seed)
    venv = VecNormalize(DummyVecEnv([lambda: env]), norm_obs=True, norm_obs_keys=["state", "objects"],
                        norm_reward=True, gamma=cfg.gamma)
    model = PPO("MultiInputPolicy", venv, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                learning_rate=cfg.learning_rate, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda, clip_range=cfg.clip_range,
                ent_coef=cfg.ent_coef, seed=seed, device="cpu", verbose=0,
                policy_kwargs=dict(log_std_init=cfg.log_std_init, net_arch=list(cfg.net_arch),
                                   features_extractor_kwargs=dict(cnn_output_dim=cfg.cnn_dim)))
    actor = PPOActor(model, venv, cfg)
    t0 = time.perf_counter()
    curve: list[dict[str, Any]] = []

    def evaluate(updates: int) -> None:
        venv.training = False  # freeze the running statistics while scoring
        res = evaluate_actor(actor, specs, size, max_steps)
        venv.training = True
        curve.append({"frames": env.frames, "updates": updates, **res, "seconds": round(time.perf_counter() - t0, 1)})
        echo(f"  ppo: {env.frames:>7} frames · {updates:>4} updates · success {res['success']:.0%} · "
             f"progress gain {res['progress_gain']:+.3f} · return {res['return']:+.3f}")

    evaluate(0)
    updates, next_eval = 0, cfg.eval_every
    while env.frames < cfg.frames:
        model.learn(total_timesteps=cfg.n_steps, reset_num_timesteps=False)  # one rollout, one update
        updates += 1
        if env.frames >= next_eval or env.frames >= cfg.frames:
            evaluate(updates)
            while next_eval <= env.frames:
                next_eval += cfg.eval_every
    venv.close()
    n_params = sum(p.numel() for p in model.policy.parameters())
    return {"curve": curve, "config": asdict(cfg), "parameters": int(n_params), "train_frames": env.frames,
            "eval_frames": int(sum(c["eval_frames"] for c in curve)), "seconds": round(time.perf_counter() - t0, 1)}


# ----------------------------------------------------------------------------- the world model's curve


def read_improve(path: str | Path) -> dict[str, Any]:
    """The interaction loop's result: per round the real frames used (capture + interaction) and success."""
    path = Path(path)
    try:
        res = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no improve.json (run `egoworld improve` first)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    rounds = res.get("rounds") if isinstance(res, dict) else None
    if not isinstance(rounds, list) or not rounds:
        raise ValueError(f"{path}: expected an object with a non-empty 'rounds' list (egoworld improve's output)")
    curve = []
    for i, r in enumerate(rounds):
        missing = [k for k in ("real_frames", "success") if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"{path}: round {i} lacks {', '.join(missing)}")
        curve.append({"round": int(r.get("round", i)), "frames": int(r["real_frames"]),
                      "interaction_frames": int(r.get("interaction_frames", 0)), "success": float(r["success"]),
                      "progress_gain": r.get("progress_gain"), "episodes": r.get("episodes")})
    if any(b["frames"] < a["frames"] for a, b in itertools.pairwise(curve)):
        raise ValueError(f"{path}: real_frames decrease from one round to the next")
    cfg = res.get("config", {})
    return {"curve": curve, "config": cfg, "run": res.get("run"), "data": res.get("data"),
            "capture_frames": curve[0]["frames"] - curve[0]["interaction_frames"], "source": str(path)}


def _improve_job(run: str, data: str, out: str, cfg: dict[str, Any]) -> str:
    """The interaction loop in its own process (beside PPO: each has one core)."""
    from egoworld.improve import ImproveConfig, improve

    improve(run, data, out, ImproveConfig(**cfg), echo=lambda s: print("  world model: " + s, flush=True))
    return str(Path(out) / "improve.json")


# ----------------------------------------------------------------------------- the verdict


def frames_to(curve: list[dict[str, Any]], threshold: float) -> int | None:
    """Real frames at the first evaluation whose success is at or above ``threshold``."""
    return next((int(c["frames"]) for c in curve if c["success"] >= threshold), None)


def verdict(ppo: dict[str, Any] | None, wm: dict[str, Any] | None, threshold: float, goal: float = 10.0) -> dict[str, Any]:
    """Frames to ``threshold`` for each agent and their ratio — a bound when only one got there."""
    out: dict[str, Any] = {"threshold": threshold, "goal_ratio": goal}
    lines = []
    for name, res in (("world_model", wm), ("ppo", ppo)):
        if res is None:
            continue
        f = frames_to(res["curve"], threshold)
        spent = max(int(c["frames"]) for c in res["curve"])
        out[name] = {"frames_to_threshold": f, "frames_spent": spent}
        label = "world model" if name == "world_model" else "PPO"
        lines.append(f"{label}: {threshold:.0%} success at {f} real frames" if f is not None else
                     f"{label}: {threshold:.0%} success not reached within {spent} real frames "
                     f"(best {max(c['success'] for c in res['curve']):.0%})")
    if ppo is not None and wm is not None:
        fw, fp = out["world_model"]["frames_to_threshold"], out["ppo"]["frames_to_threshold"]
        sp = out["ppo"]["frames_spent"]
        if fw is not None and fp is not None:
            out["ratio"] = round(fp / fw, 3)
            met = "met" if out["ratio"] >= goal else "not met"
            lines.append(f"ratio PPO / world model: {out['ratio']:.2f}× (goal ≥ {goal:g}×: {met})")
        elif fw is not None:
            out["ratio_at_least"] = round(sp / fw, 3)
            lines.append(f"ratio PPO / world model: > {out['ratio_at_least']:.2f}× (PPO not there within its budget; "
                         f"the goal of ≥ {goal:g}× needs PPO measured past {int(goal * fw)} frames)"
                         if out["ratio_at_least"] < goal else
                         f"ratio PPO / world model: > {out['ratio_at_least']:.2f}× (goal ≥ {goal:g}×: met)")
        else:
            lines.append("ratio: undefined (the world model did not reach the threshold)")
    out["lines"] = lines
    return out


# ----------------------------------------------------------------------------- outputs


def plot(result: dict[str, Any], path: Path) -> Any:
    """Success (top) and progress gain (below: it moves long before success does) against real frames, log x;
    the world model also against its interaction frames alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ag) = plt.subplots(2, 1, figsize=(7.5, 6.4), sharex=True, height_ratios=(3, 2))
    thr = result["verdict"]["threshold"]
    def gain(p: dict[str, Any]) -> float:
        return np.nan if p.get("progress_gain") is None else p["progress_gain"]

    if result.get("ppo"):
        c = [p for p in result["ppo"]["curve"] if p["frames"] > 0]  # (the untrained policy sits at 0 frames)
        for a, y in ((ax, [p["success"] for p in c]), (ag, [gain(p) for p in c])):
            a.plot([p["frames"] for p in c], y, "s-", ms=4, color="#b91c1c", label="PPO (SB3)")
    if result.get("world_model"):  # drawn last: on top where the curves meet
        c = result["world_model"]["curve"]
        inter = [p for p in c if p["interaction_frames"] > 0]
        for a, f in ((ax, lambda p: p["success"]), (ag, gain)):
            a.plot([p["frames"] for p in c], [f(p) for p in c], "o-", ms=7, color="#1d4ed8",
                   label="world model (capture + interaction frames)")
            if inter:
                a.plot([p["interaction_frames"] for p in inter], [f(p) for p in inter], "o--", color="#1d4ed8",
                       alpha=0.45, label="world model (interaction frames only)")
    ax.axhline(thr, color="#555", ls=":", lw=1, label=f"{thr:.0%} success")
    fw = (result["verdict"].get("world_model") or {}).get("frames_to_threshold")
    if fw:  # the goal: PPO needs at least 10× the world model's frames to get there
        g = result["verdict"]["goal_ratio"]
        ax.axvline(g * fw, color="#15803d", ls="--", lw=1, label=f"{g:g}× the world model's frames to {thr:.0%}")
    ag.axhline(0, color="#555", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ag.set_xlabel("real simulator frames (log)")
    ax.set_ylabel(f"success ({result['config']['eval_episodes']} held-in starts)")
    ag.set_ylabel("progress gain")
    ax.set_title(f"Sample efficiency on {result['config']['task']}")
    for a in (ax, ag):
        a.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return fig


def report_html(result: dict[str, Any], fig: Any, path: Path) -> None:
    from egoworld.html import esc, measured_on, page, png, table, write_page

    v = result["verdict"]
    rows = []
    for name, label in (("world_model", "world model"), ("ppo", "PPO")):
        for p in (result.get(name) or {}).get("curve", []):
            step = f"round {p['round']}" if name == "world_model" else f"{p['updates']} updates"
            pg = p.get("progress_gain")
            rows.append([label, step, p["frames"], p.get("interaction_frames", ""), f"{p['success']:.0%}",
                         "" if pg is None else f"{pg:+.3f}", p.get("episodes", "")])
    cfg = result["config"]
    body = (f"<h1>Sample efficiency: world model vs PPO on {esc(cfg['task'])}</h1>"
            + "".join(f"<p><b>{esc(line)}</b></p>" for line in v["lines"])
            + f"<img src='{png(fig)}' alt='success against real frames'>"
            + measured_on(f"{result['date']} · commit {result['code'].get('git_commit')} · {result['command']}")
            + "<h2>Curves</h2>"
            + table(["agent", "at", "real frames", "of which interaction", "success", "progress gain", "episodes"], rows)
            + "<h2>Evaluation starts (both agents)</h2>"
            + table(["place", "person", "reset seed"], [[s["place"], s["person"], s["reset_seed"]] for s in cfg["starts"]])
            + "<h2>Config</h2>"
            + table(["", "value"], [[k, json.dumps(v)] for k, v in cfg.items() if k != "starts"]))
    write_page(path, page("Sample efficiency", [body]))


# ----------------------------------------------------------------------------- main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    d = PPOConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--task", default="push")
    ap.add_argument("--size", type=int, default=64, help="PPO's image (square; NatureCNN needs ≥ 36)")
    ap.add_argument("--max-steps", type=int, default=90, help="frames per episode (the closed-loop length)")
    ap.add_argument("--eval-episodes", type=int, default=6, help="evaluation starts (held-in places; both agents)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--places", default=None, help="held-in places, e.g. 0,1,2 (default: the run's, else 0,1,2,3)")
    ap.add_argument("--people", default=None, help="people, e.g. 0,1 (default: the run's, else 0)")
    ap.add_argument("--ppo-frames", type=int, default=d.frames, help="PPO's real-frame budget (0: no PPO)")
    ap.add_argument("--eval-every", type=int, default=d.eval_every)
    for f in ("dims", "scale", "repeat", "n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda",
              "clip_range", "ent_coef", "log_std_init", "cnn_dim"):
        ap.add_argument("--ppo-" + f.replace("_", "-"), dest="ppo_" + f, type=type(getattr(d, f)), default=getattr(d, f))
    wm = ap.add_mutually_exclusive_group()
    wm.add_argument("--improve-json", default=None, help="the world model's curve from an earlier `egoworld improve`")
    wm.add_argument("--run", default=None, help="run the interaction loop from this trained run (needs --data)")
    ap.add_argument("--data", default=None, help="the run's data folder (new interaction sessions are added to it)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--steps", type=int, default=150, help="fine-tuning steps per round")
    ap.add_argument("--session-seconds", type=float, default=12.0, help="length of each interaction session")
    ap.add_argument("--track", type=float, default=0.0,
                    help="the loop's planner scores by the imagined tracked object (egoworld plan --track)")
    ap.add_argument("--progress", type=float, default=1.0, help="weight of the reward head's progress in its cost")
    a = ap.parse_args(argv)
    if a.run and not a.data:
        ap.error("--run needs --data (the data folder the run was trained on)")
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from egoworld.train.lineage import code_version

    a = parse(argv)
    code = code_version()  # the code that runs (taken now: a long measurement may outlive the checkout's HEAD)
    command = "python bench/sample_efficiency.py " + " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    ppo_cfg = PPOConfig(frames=a.ppo_frames, eval_every=a.eval_every, **{f: getattr(a, "ppo_" + f) for f in (
        "dims", "scale", "repeat", "n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda",
        "clip_range", "ent_coef", "log_std_init", "cnn_dim")})

    wm: dict[str, Any] | None = None
    job: Future | None = None
    pool = None
    run = a.run
    if a.improve_json:
        wm = read_improve(a.improve_json)
        t = wm["config"].get("task")
        if t and t != a.task:
            raise SystemExit(f"error: {a.improve_json} measured task {t!r}, --task is {a.task!r}")
        run = wm.get("run")
    where = eval_places(run, a.places, a.people)
    specs = eval_specs(a.task, a.eval_episodes, where, a.seed)
    if a.run:
        import multiprocessing as mp

        from egoworld.improve import ImproveConfig

        icfg = asdict(ImproveConfig(task=a.task, rounds=a.rounds, sessions=a.sessions, steps=a.steps, seconds=a.session_seconds,
                                    eval_episodes=a.eval_episodes, max_steps=a.max_steps, seed=a.seed,
                                    objective={k: v for k, v in dict(track=a.track).items() if v}
                                    | ({"progress": a.progress} if a.progress != 1.0 else {})))
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
        job = pool.submit(_improve_job, a.run, a.data, str(out / "improve"), icfg)
        print(f"world model: the interaction loop from {a.run} ({a.rounds} rounds) → {out / 'improve'}", flush=True)

    ppo = None
    if a.ppo_frames > 0:
        print(f"PPO: {a.ppo_frames} frames on {a.task}, evaluated every {a.eval_every} on {len(specs)} starts "
              f"(places {where['held_in']}, people {where['people']})", flush=True)
        ppo = ppo_curve(a.task, a.size, a.max_steps, ppo_cfg, specs, where, a.seed)
    if a.improve_json:  # read again: a loop still running beside PPO has written its later rounds meanwhile
        wm = read_improve(a.improve_json)
    wm_error = None
    if job is not None:
        try:
            wm = read_improve(job.result())
        except Exception as e:  # keep PPO's curve: report the loop's failure instead of losing both
            wm_error = f"{type(e).__name__}: {e}"
            print(f"world model: the interaction loop failed — {wm_error}", flush=True)
        pool.shutdown()

    result: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "code": code, "command": command,
        "config": {"task": a.task, "size": a.size, "max_steps": a.max_steps, "eval_episodes": a.eval_episodes,
                   "seed": a.seed, "threshold": a.threshold, "places": where["held_in"], "people": where["people"],
                   "starts": [asdict(s) for s in specs], "ppo": asdict(ppo_cfg),
                   "world_model": {"improve_json": a.improve_json, "run": a.run or (wm or {}).get("run"),
                                   "data": a.data or (wm or {}).get("data"),
                                   "rounds": a.rounds if a.run else None}},
        "ppo": ppo, "world_model": wm, "world_model_error": wm_error}
    result["verdict"] = verdict(ppo, wm, a.threshold)
    write_json(out / "sample_efficiency.json", result)
    fig = plot(result, out / "sample_efficiency.png")
    report_html(result, fig, out / "report.html")
    for line in result["verdict"]["lines"]:
        print(line)
    print(f"→ {out / 'sample_efficiency.json'}, {out / 'sample_efficiency.png'}, {out / 'report.html'}")
    return result


if __name__ == "__main__":
    main()
