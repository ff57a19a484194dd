"""Planning over the 20-D control: CEM and MPPI with a receding horizon and a warm start.

The planner knows nothing about what it plans in. It proposes batches of control sequences and
asks a ``rollout_cost(controls (N, T, 20)) -> cost (N,)`` callable to score them; the world model
(``WorldModelCost``: a batched latent rollout from the filtered current state, no decoding) and
the true simulator (the sim-oracle in ``egoworld.evaluate.closed_loop``) are two such callables,
so "how much worse is planning in the model than planning in the world?" compares like with like.

The decision variable is a short sequence of *knots*: each knot is one control held for
``repeat`` frames, over the planned control columns only (``dims``; the others stay at rest:
head still, wrist orientation kept). Knots live in a normalised box [-1, 1]^D that maps onto the
control limits (``CONTROL_LOW``/``HIGH``, deltas scaled by ``scale``; grips span [0, 1]), so one
standard deviation means the same thing in every column. After each knot is executed the mean
is shifted by one knot (warm start) and the next plan starts from it.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from egoworld.actions import CONTROL_DIM, CONTROL_HIGH, CONTROL_LOW, control_to_action
from egoworld.video import to_model_frame

# Planned control columns (egoworld.actions: head 0-5, left wrist 6-11 + grip 12, right wrist 13-18 + grip 19).
DIMS = {
    "hands": (6, 7, 8, 12, 13, 14, 15, 19),  # wrist translations + grips: the head keeps looking at the table
    "moves": (6, 7, 8, 13, 14, 15),  # wrist translations alone, hands open: pushing, never grasping
    "wrists": tuple(range(6, 20)),  # + wrist rotations
    "all": tuple(range(CONTROL_DIM)),
}
GRIPS = (12, 19)

RolloutCost = Callable[[np.ndarray], np.ndarray]


@dataclass
class PlannerConfig:
    """Every knob of a planner; the CLI options of `egoworld plan` map onto these fields."""

    method: str = "cem"  # cem | mppi
    horizon: int = 4  # knots looked ahead
    repeat: int = 3  # frames each knot's control is held (the replanning cadence, in frames)
    samples: int = 64  # candidate sequences per iteration
    iterations: int = 3
    elites: int = 8  # CEM: the best this many refit the sampling distribution
    temperature: float = 0.5  # MPPI: softmax temperature in units of the cost's standard deviation
    init_std: float = 0.3  # sampling std at each replan, in the normalised box (wider: a weak model gets exploited)
    min_std: float = 0.05
    momentum: float = 0.1  # CEM: share of the old mean kept at each refit
    dims: str = "hands"
    scale: float = 0.5  # share of the per-frame control limits the planned deltas may use
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("cem", "mppi"):
            raise ValueError(f"planner method must be 'cem' or 'mppi', got {self.method!r}")
        if self.dims not in DIMS:
            raise ValueError(f"planner dims must be one of {', '.join(DIMS)}, got {self.dims!r}")
        if min(self.horizon, self.repeat, self.samples, self.iterations) < 1:
            raise ValueError("horizon, repeat, samples and iterations must be ≥ 1")
        self.elites = max(1, min(self.elites, self.samples))

    @property
    def frames(self) -> int:
        """Frames one rollout covers."""
        return self.horizon * self.repeat

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlanResult:
    controls: np.ndarray  # (frames, 20): the chosen sequence (execute the first `repeat` rows)
    cost: float  # its cost (CEM: as scored; MPPI: the best scored sample)
    seconds: float
    evaluations: int


class Parametrisation:
    """Knots (N, K, D) in [-1, 1] ↔ per-frame controls (N, K·repeat, 20)."""

    def __init__(self, dims: str = "hands", repeat: int = 1, scale: float = 0.5) -> None:
        self.cols = np.array(DIMS[dims])
        self.repeat = repeat
        lo, hi = CONTROL_LOW * scale, CONTROL_HIGH * scale
        lo[list(GRIPS)], hi[list(GRIPS)] = 0.0, 1.0
        self.mid = ((lo + hi) / 2)[self.cols]
        self.half = ((hi - lo) / 2)[self.cols]

    @property
    def dim(self) -> int:
        return len(self.cols)

    def controls(self, knots: np.ndarray) -> np.ndarray:
        """Controls for knots (..., K, D); unplanned columns at rest (no head or wrist-orientation change)."""
        out = np.zeros(knots.shape[:-1] + (CONTROL_DIM,))
        out[..., self.cols] = self.mid + self.half * np.clip(knots, -1.0, 1.0)
        return np.repeat(out, self.repeat, axis=-2)


class Planner:
    """Shared machinery of CEM and MPPI: sampling, the warm-started mean, the knot ↔ control map."""

    def __init__(self, cfg: PlannerConfig) -> None:
        self.cfg = cfg
        self.param = Parametrisation(cfg.dims, cfg.repeat, cfg.scale)
        self.reset(cfg.seed)

    def reset(self, seed: int | None = None) -> None:
        """Forget the warm start (a new episode); reseed when ``seed`` is given."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.mean = np.zeros((self.cfg.horizon, self.param.dim))

    def advance(self, knots: int = 1) -> None:
        """Warm start: drop the executed knots, pad the end with the prior mean: no motion, grip 0.5
        (between the release and grasp thresholds, so whatever is held stays held)."""
        self.mean = np.concatenate([self.mean[knots:], np.zeros((min(knots, self.cfg.horizon), self.param.dim))])

    def sample(self, mean: np.ndarray, std: np.ndarray | float) -> np.ndarray:
        eps = self.rng.standard_normal((self.cfg.samples,) + mean.shape)
        u = np.clip(mean + std * eps, -1.0, 1.0)
        u[0] = np.clip(mean, -1.0, 1.0)  # the warm-started mean is always a candidate
        return u

    def plan(self, rollout_cost: RolloutCost) -> PlanResult:
        raise NotImplementedError

    def random_knots(self, n: int = 1) -> np.ndarray:
        """Uniform knots over the box: the random-action baseline in the same parametrisation."""
        return self.rng.uniform(-1.0, 1.0, (n, self.cfg.horizon, self.param.dim))


class CEM(Planner):
    """Cross-entropy method: refit a diagonal Gaussian to the elites; execute the best sequence scored."""

    def plan(self, rollout_cost: RolloutCost) -> PlanResult:
        t0 = time.perf_counter()
        cfg = self.cfg
        mean, std = self.mean.copy(), np.full_like(self.mean, cfg.init_std)
        best_u, best_c, evals = mean, np.inf, 0
        for _ in range(cfg.iterations):
            u = self.sample(mean, std)
            c = np.asarray(rollout_cost(self.param.controls(u)), dtype=np.float64)
            evals += len(u)
            order = np.argsort(c, kind="stable")
            if c[order[0]] < best_c:
                best_u, best_c = u[order[0]].copy(), float(c[order[0]])
            elite = u[order[: cfg.elites]]
            mean = cfg.momentum * mean + (1 - cfg.momentum) * elite.mean(0)
            std = np.maximum(elite.std(0), cfg.min_std)
        self.mean = best_u.copy()
        return PlanResult(self.param.controls(best_u), best_c, time.perf_counter() - t0, evals)


class MPPI(Planner):
    """Model-predictive path integral: the mean moves to the cost-softmax-weighted average of samples."""

    def plan(self, rollout_cost: RolloutCost) -> PlanResult:
        t0 = time.perf_counter()
        cfg = self.cfg
        mean, best_c, evals = self.mean.copy(), np.inf, 0
        for _ in range(cfg.iterations):
            u = self.sample(mean, cfg.init_std)
            c = np.asarray(rollout_cost(self.param.controls(u)), dtype=np.float64)
            evals += len(u)
            best_c = min(best_c, float(c.min()))
            w = np.exp(-(c - c.min()) / (cfg.temperature * (c.std() + 1e-9)))
            mean = np.tensordot(w / w.sum(), u, axes=1)
        self.mean = mean
        return PlanResult(self.param.controls(mean), best_c, time.perf_counter() - t0, evals)


def make_planner(cfg: PlannerConfig) -> Planner:
    return (CEM if cfg.method == "cem" else MPPI)(cfg)


# ----------------------------------------------------------------------------- the world model as cost


@dataclass
class Objective:
    """What a rollout is scored by (lower cost is better).

    ``progress``: the reward head predicts the task's progress level (the data's ``next.reward``);
    a rollout scores its mean over the horizon (getting there sooner counts) plus ``terminal`` ×
    the last step. ``success``: weight of the continuation head's P(episode over) = P(success).
    ``goal``: weight of the latent distance to an encoded goal image (total variation between the
    rollout's prior latent distributions and the goal's posterior, averaged over latents).
    ``uncertainty``: weight of the reward ensemble's disagreement (std over heads, mean over the
    horizon; models with ``reward_heads`` > 1): a plan whose outcome the heads dispute leads where
    the data never went, and the model's optimism there is what a planner would exploit.
    ``track``: weight of the goal-conditioned cost on the imagined tracked points (models with
    ``track_points`` ≥ 2): the nearest imagined hand's distance to the imagined object plus the object's
    distance to its goal, in metres, averaged over the horizon (+ ``terminal`` × the last step). Why:
    reach it, then bring it there — the cost every task here shares, read from the part of the state the
    body and the tracker pin down, not from a reward head that may have learned a shortcut.
    ``approach``: metres behind the object, on the far side from its goal, that the hand is drawn to instead
    of the object itself — where a push starts (a hand drawn to the object's centre pushes it away from
    where the hand came from, whichever way the goal lies). 0: the object. A mapping {task: metres} gives
    each task its own (push is the one task done without a grip: its hand must start behind the object,
    while a drawer's handle or a block to pick is taken where it is); ``for_task`` resolves it.
    """

    progress: float = 1.0
    terminal: float = 1.0
    success: float = 0.0
    goal: float = 0.0
    uncertainty: float = 0.0
    track: float = 0.0
    approach: float | dict = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def for_task(self, task: str) -> "Objective":
        """This objective for one task: a per-task ``approach`` becomes that task's (0 for tasks it does not name)."""
        if isinstance(self.approach, dict):
            return replace(self, approach=float(self.approach.get(task, 0.0)))
        return self

    @staticmethod
    def parse_approach(text: str) -> float | dict:
        """``--approach``: metres for every task ("0.05") or per task ("push=0.05,stack=0.02")."""
        from egoworld.capture.sim.catalog import TASKS

        text = text.strip()
        if "=" not in text:
            return float(text)
        out = {}
        for item in filter(None, (x.strip() for x in text.split(","))):
            name, _, value = item.partition("=")
            if name.strip() not in TASKS:
                raise ValueError(f"--approach: unknown task {name.strip()!r} (known: {', '.join(TASKS)})")
            out[name.strip()] = float(value)
        return out


class WorldModelCost:
    """Score control sequences by imagining them from the model's filtered current state.

    ``observe(image, control)`` is called once per real frame (``control``: what moved the body
    from the previous frame to this one; ``None`` for the first frame). Each plan re-filters the
    last ``context`` frames (the model was trained on clips that start from its learned initial
    state, so a fixed short window stays in distribution) and rolls every candidate out with the
    prior in one batch — latent only, nothing is decoded.
    """

    def __init__(self, model, hand_scale: float | np.ndarray = 1.0, context: int = 8, objective: Objective | None = None,
                 goal_image: np.ndarray | None = None) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.size = int(model.cfg.image_size)
        self.hand_scale = hand_scale
        self.context = max(1, int(context))
        self.objective = objective or Objective(goal=1.0 if goal_image is not None else 0.0)
        self.frames: deque = deque(maxlen=self.context)
        self.actions: deque = deque(maxlen=self.context)
        self.states: deque = deque(maxlen=self.context)  # the body state of each frame (NaN: not given)
        self.objects: deque = deque(maxlen=self.context)  # the object tracker's report of each frame (NaN: none)
        self._start = None
        self.goal_probs = None if goal_image is None else self.encode_goal(goal_image)
        self.filter_seconds = 0.0

    def _image(self, image: np.ndarray):
        """(H, W, 3) uint8 → (3, S, S) uint8 at the model's size (``to_model_frame``)."""
        return self.torch.from_numpy(np.ascontiguousarray(to_model_frame(image, self.size))).permute(2, 0, 1)

    def reset(self) -> None:
        self.frames.clear()
        self.states.clear()
        self.objects.clear()
        self.actions.clear()
        self._start = None

    def observe(self, image: np.ndarray, control: np.ndarray | None = None, state: np.ndarray | None = None,
                objects: np.ndarray | None = None) -> None:
        """A new frame [, the control that led to it, the body state (21-D) sensed with it, and the tracked
        objects (world frame, as ``observation.objects``)]."""
        if control is not None and self.frames:
            self.actions.append(control_to_action(np.asarray(control, dtype=np.float64), self.hand_scale))
        self.frames.append(self._image(image))
        self.states.append(np.full(self.model.cfg.state_dim, np.nan, np.float32) if state is None
                           else np.asarray(state, dtype=np.float32))
        width = 3 * self.model.cfg.track_points
        self.objects.append(np.full(width, np.nan, np.float32) if objects is None
                            else np.asarray(objects, dtype=np.float32).ravel()[:width])
        while len(self.actions) > len(self.frames) - 1:
            self.actions.popleft()
        self._start = None

    def start_state(self):
        """The posterior state at the last observed frame (filtered over the window)."""
        if self._start is None:
            torch = self.torch
            if not self.frames:
                raise RuntimeError("WorldModelCost.observe(image) must be called before planning")
            t0 = time.perf_counter()
            img = torch.stack(list(self.frames))[None]
            T = img.shape[1]
            act = np.zeros((T, self.model.cfg.action_dim), np.float32)
            if self.actions:
                act[: len(self.actions)] = np.stack(self.actions)
            valid = torch.zeros(1, T, dtype=torch.bool)
            valid[0, : len(self.actions)] = True
            with torch.no_grad():
                posts, _ = self.model.observe(img, torch.from_numpy(act)[None], valid, sample=False,
                                              state=torch.from_numpy(np.stack(self.states))[None],
                                              objects=torch.from_numpy(np.stack(self.objects))[None])
            self._start = posts.last()
            self.filter_seconds = time.perf_counter() - t0
        return self._start

    def encode_goal(self, image: np.ndarray):
        torch = self.torch
        img = self._image(image)[None, None]
        act = torch.zeros(1, 1, self.model.cfg.action_dim)
        with torch.no_grad():
            posts, _ = self.model.observe(img, act, torch.zeros(1, 1, dtype=torch.bool), sample=False)
        return posts.probs[:, 0]  # (1, stoch, classes)

    def __call__(self, controls: np.ndarray) -> np.ndarray:
        return imagined_cost(self.model, self.start_state(), controls, self.hand_scale, self.objective, self.goal_probs)


def imagined_cost(model, start, controls: np.ndarray, hand_scale: float | np.ndarray, objective: Objective,
                  goal_probs=None) -> np.ndarray:
    """The cost (N,) of control sequences (N, T, 20) imagined from one model ``State`` (batch 1), latent only."""
    import torch

    N = len(controls)
    act = torch.from_numpy(control_to_action(controls, hand_scale).astype(np.float32))
    s = start.map(lambda t: t.expand((N,) + t.shape[1:]))
    o = objective
    with torch.no_grad():
        states = model.imagine(s, act, sample=False)
        feat = states.feat()
        cost = torch.zeros(N)
        if o.progress or o.uncertainty:
            members = model.reward_members(feat)  # (K, N, T)
            r = members.mean(0)
            cost -= o.progress * (r.mean(1) + o.terminal * r[:, -1])
            if o.uncertainty and len(members) > 1:
                cost += o.uncertainty * members.std(0).mean(1)
        if o.success:
            cost -= o.success * (1.0 - model.cont(feat)).mean(1)
        if o.track:
            if isinstance(o.approach, dict):
                raise ValueError("a per-task approach must be resolved for the task first (Objective.for_task)")
            d = track_distances(model, states, o.approach)  # (N, T)
            cost += o.track * (d.mean(1) + o.terminal * d[:, -1])
        if o.goal and goal_probs is not None:
            tv = 0.5 * (states.probs - goal_probs[:, None]).abs().sum(-1).mean(-1)  # (N, T)
            cost += o.goal * (tv.mean(1) + o.terminal * tv[:, -1])
    return cost.numpy().astype(np.float64)


def _tracked_parts(model, b) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """The body part (…, body_size) → wrists (…, 2, 3), the tracked object (…, 3), its goal (…, 3), metres."""
    from egoworld.model.config import BODY_DIM
    from egoworld.model.nets import EGO_POS_SCALE

    if model.cfg.track_points < 2 or b is None:
        raise ValueError("the track cost needs a model trained with tracked objects (--set track_points=2)")
    b = b * EGO_POS_SCALE
    return b[..., :6].unflatten(-1, (2, 3)), b[..., BODY_DIM:BODY_DIM + 3], b[..., BODY_DIM + 3:BODY_DIM + 6]


def track_progress(model, feat, start_feat=None) -> "torch.Tensor":
    """Task progress in [0, 1] read from the tracked points of state features (…, F), as the simulator's
    ``TaskState.progress`` reads the true state: 0.2 × how near the nearest hand is to the object (1 at it, 0 at
    ``REACH_RANGE``) + 0.8 × how much of the object's distance to its goal at ``start_feat`` (…, F; default:
    ``feat`` itself) is closed. Why: a reward a policy learns from in the dream that is measured where the
    model is exact (the kinematic step) and learned (what the hands do to the object), not a reward head that
    may read a shortcut."""
    import torch

    from egoworld.capture.sim.tasks import PUSH_TOLERANCE, REACH_RANGE

    size = model.cfg.body_size
    wrists, obj, goal = _tracked_parts(model, feat[..., -size:])
    reach = (wrists - obj.unsqueeze(-2)).norm(dim=-1).amin(-1)
    dist = (goal - obj).norm(dim=-1)
    if start_feat is None:
        d0 = dist
    else:
        _, obj0, goal0 = _tracked_parts(model, start_feat[..., -size:])
        d0 = (goal0 - obj0).norm(dim=-1)
    near = (1 - reach / REACH_RANGE).clamp(0, 1)
    closed = (1 - dist / d0.clamp_min(PUSH_TOLERANCE)).clamp(0, 1)
    return 0.2 * near + 0.8 * closed


def track_done(model, feat, task: str) -> "torch.Tensor":
    """1 where the imagined tracked object is within the task's ``TRACK_DONE`` of its imagined goal, else 0 (…)."""
    from egoworld.capture.sim.tasks import TRACK_DONE

    if task not in TRACK_DONE:
        raise ValueError(f"no tracked-object success for task {task!r} (known: {', '.join(TRACK_DONE)})")
    _, obj, goal = _tracked_parts(model, feat[..., -model.cfg.body_size:])
    return ((goal - obj).norm(dim=-1) < TRACK_DONE[task]).to(feat.dtype)


def track_distances(model, states, approach: float = 0.0) -> "torch.Tensor":
    """Imagined states (N, T, ·) → nearest hand to object (or to the point ``approach`` metres behind it, away
    from its goal) + object to goal (N, T), metres (``Objective.track``)."""
    from egoworld.model.config import BODY_DIM
    from egoworld.model.nets import EGO_POS_SCALE

    wrists, obj, goal = _tracked_parts(model, states.b)
    to_goal = goal - obj
    dist = to_goal.norm(dim=-1, keepdim=True)
    target = obj - approach * to_goal / dist.clamp_min(1e-6) if approach else obj
    reach = (wrists - target.unsqueeze(-2)).norm(dim=-1).amin(-1)
    return reach + dist.squeeze(-1)


def progress_cost_parts(model, start, controls: np.ndarray, hand_scale: float | np.ndarray, terminal: float = 1.0,
                        approach: float = 0.0) -> dict[str, np.ndarray]:
    """The progress cost (N,) of control sequences with the imagined state taken apart — which part of
    it ranks the plans: ``full``; ``latent`` (the imagined [h, z], the body part held where it started);
    ``body`` (the start's [h, z], the imagined body part); ``wrists`` (N, T, 2, 3), the imagined
    wrist positions in the start's head frame (metres), for costs that know where things are; and, for
    models with tracked points, ``track`` (the ``Objective.track`` cost alone)."""
    import torch

    from egoworld.model.nets import EGO_POS_SCALE

    N = len(controls)
    act = torch.from_numpy(control_to_action(controls, hand_scale).astype(np.float32))
    with torch.no_grad():
        st = model.imagine(start.map(lambda t: t.expand((N,) + t.shape[1:])), act, sample=False)
        T = st.h.shape[1]
        h0, z0 = start.h[:, None].expand(N, T, -1), start.z.reshape(1, 1, -1).expand(N, T, -1)
        feats = {"full": st.feat()}
        if st.b is not None:
            b0 = start.b[:, None].expand(N, T, -1)
            feats["latent"] = torch.cat([st.h, st.z.reshape(N, T, -1), b0], -1)
            feats["body"] = torch.cat([h0, z0, st.b], -1)
        out = {}
        for k, f in feats.items():
            r = model.reward(f)
            out[k] = (-(r.mean(1) + terminal * r[:, -1])).numpy().astype(np.float64)
        if st.b is not None:
            out["wrists"] = (st.b[..., :6] * EGO_POS_SCALE).reshape(N, T, 2, 3).numpy().astype(np.float64)
        if model.cfg.track_points >= 2 and st.b is not None:
            d = track_distances(model, st, approach)
            out["track"] = (d.mean(1) + terminal * d[:, -1]).numpy().astype(np.float64)
    return out


class LatentCost:
    """The world-model cost from the model state an environment already holds (``env.model_state``: the
    dream's imagined state, or ``FilteredSimEnv``'s filter of real frames) — a planner that acts inside
    the dream scores its candidates from where the dream is, not from decoded frames."""

    def __init__(self, model, env, objective: Objective | None = None) -> None:
        self.model, self.env, self.objective = model, env, objective or Objective()

    def __call__(self, controls: np.ndarray) -> np.ndarray:
        return imagined_cost(self.model, self.env.model_state, controls, self.env.hand_scale, self.objective)


class SimCost:
    """Roll candidate control sequences out in the true simulator from its current true state.

    Cost = −(mean true progress over the rollout + ``terminal`` × its last value): the world-model
    cost's objective with the reward head replaced by the truth. The state is restored afterwards.
    This is the sim-oracle: the same planner with the world in place of the model.
    """

    def __init__(self, env, terminal: float = 1.0) -> None:
        self.env, self.terminal = env, terminal

    def __call__(self, controls: np.ndarray) -> np.ndarray:
        sim, task = self.env.sim, self.env.task
        s0 = sim.get_state()
        cost = np.empty(len(controls))
        for n, seq in enumerate(controls):
            sim.set_state(s0)
            p = np.empty(len(seq))
            for k, c in enumerate(seq):
                sim.step(c)
                p[k] = task.progress()
                if p[k] >= 1.0:  # success: the rest of the rollout stays done
                    p[k:] = 1.0
                    break
            cost[n] = -(p.mean() + self.terminal * p[-1])
        sim.set_state(s0)
        return cost


@dataclass
class MPC:
    """Receding-horizon control: plan, execute one knot (``repeat`` frames), shift, replan."""

    planner: Planner
    cost: RolloutCost
    queue: list = field(default_factory=list)
    replans: list = field(default_factory=list)  # PlanResult of every replan

    def reset(self, seed: int | None = None) -> None:
        self.planner.reset(seed)
        self.queue.clear()
        self.replans.clear()

    def act(self) -> np.ndarray:
        if not self.queue:
            res = self.planner.plan(self.cost)
            self.replans.append(res)
            self.queue.extend(res.controls[: self.planner.cfg.repeat])
            self.planner.advance(1)
        return self.queue.pop(0)


def wm_planner(model, cfg: PlannerConfig | None = None, hand_scale: float | np.ndarray = 1.0, context: int | None = None,
               objective: Objective | None = None, goal_image: np.ndarray | None = None) -> tuple[MPC, WorldModelCost]:
    """A world-model MPC controller; feed real frames to the returned cost's ``observe``."""
    cfg = cfg or PlannerConfig()
    cost = WorldModelCost(model, hand_scale, context or model.cfg.context, objective, goal_image)
    return MPC(make_planner(cfg), cost), cost


__all__ = ["CEM", "DIMS", "MPC", "MPPI", "LatentCost", "Objective", "Parametrisation", "PlanResult", "Planner", "PlannerConfig",
           "SimCost", "WorldModelCost", "imagined_cost", "make_planner", "progress_cost_parts",
           "track_distances", "track_progress", "wm_planner"]
