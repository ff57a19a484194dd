"""One config dataclass for the world model and its training; presets are named overrides of it.

Why one dataclass: a run is fully described by one flat object that is printed in full at the
start, saved beside every checkpoint (``config.json``) and rebuilt from it, and whose fields are
the CLI options. Presets (``tiny``, ``small``, ``base``) only override fields of the default.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from egoworld.actions import ACTION_DIM
from egoworld.state import STATE_DIM

BODY_DIM = 9  # what the body senses (``nets.egocentric``): both wrists in the head frame, gravity's direction


@dataclass
class Config:
    """Every hyper-parameter of a run. Defaults are the ``tiny`` preset."""

    preset: str = "tiny"
    # --- data ---
    image_size: int = 64
    seq_len: int = 16  # frames per training clip
    batch_size: int = 16  # global batch (split across DDP ranks)
    action_dim: int = ACTION_DIM
    state_dim: int = STATE_DIM
    sync_offset_frames: int = 0  # train on motion k frames off the video (sync ablation; evaluation stays aligned)
    train_places: str = ""  # comma-separated places to train on ("": all but held-out; the single-place ablation)
    # --- networks ---
    cnn_depth: int = 16  # channels of the first conv stage; doubles per stage
    cnn_min_res: int = 4  # encoder downsamples until this resolution
    deter: int = 192  # GRU state h
    stoch: int = 16  # number of categorical latents in z
    classes: int = 16  # classes per latent
    hidden: int = 192  # width of MLPs inside the RSSM and heads
    body_state: bool = True  # the state carries what the body senses (wrists in the head frame, gravity): rssm.py
    body_drop: float = 0.1  # in training, hide the sensed body on this share of frames (tracking drops out; callers may lack it)
    track_points: int = 0  # tracked points the body part also carries (observation.objects: the task's object, its goal), in the head frame
    contact: bool = False  # tracked points follow a hand through a learned contact gate (rssm.py); needs track_points
    contact_dirs: bool = False  # the contact step also gates the move's part along the contact normal and toward the other point
    track_motion_weight: float = 0.0  # extra body-loss weight on a tracked point's frames where it moved in the world (contact is rare)
    head_layers: int = 1
    unimix: float = 0.01  # mix 1 % uniform into every categorical (DreamerV3)
    reward_heads: int = 1  # an ensemble of reward heads: their disagreement marks states the data never showed (planning penalises it)
    reward_bins: int = 41  # twohot bins over symlog(reward) in [-reward_range, reward_range]
    reward_range: float = 5.0
    decoder: str = "warp"  # warp: change of a reference frame (flow + mask + new content); plain: from the latent alone
    camera_fov_deg: float = 90.0  # the warp starts from the head rotation's homography at this FOV; 0: no rotation warp
    rotation_from: str = "action"  # action: chain the actions' head rotations (exact); state: the state head's guess
    action_blind: bool = False  # zero every action: the "ignore the action" baseline
    # --- losses ---
    image_scale: float = 1.0
    state_scale: float = 1.0
    body_scale: float = 10.0  # the body part's predicted step (one-step and open-loop), squared error
    ego_scale: float = 1.0  # head-frame wrist positions + gravity direction (``egocentric``); 0: no such head
    scene_scale: float = 0.0  # the frame, downsampled, decoded from the latent alone (``scene_head``); 0: none (default: docs/results/model.md)
    scene_size: int = 32  # its resolution
    reward_scale: float = 1.0
    cont_scale: float = 1.0
    dyn_scale: float = 0.5  # KL balancing: train the prior toward the posterior ...
    rep_scale: float = 0.1  # ... more strongly than the posterior toward the prior
    free_nats: float = 1.0  # free bits, per time step, summed over latents
    overshoot: int = 4  # open-loop steps of the multi-step loss; 0 switches it off
    overshoot_stride: int = 4  # start an open-loop rollout every n-th posterior state
    overshoot_kl_scale: float = 0.5  # KL(sg(posterior_{t+k}) || open-loop prior_{t+k})
    overshoot_image_scale: float = 1.0  # decoded-frame loss of the open-loop state at t+k
    overshoot_reward_scale: float = 0.0  # reward + continuation heads on open-loop states (what a planner scores); 0: posterior only
    # --- optimisation ---
    lr: float = 6e-4
    adam_eps: float = 1e-6
    warmup: int = 50
    grad_clip: float = 100.0
    weight_decay: float = 0.0
    # --- loop ---
    steps: int = 0  # 0: decide from `minutes` after timing the first steps
    minutes: float = 5.0
    val_every: int = 100
    val_batches: int = 4
    ckpt_every: int = 100
    keep_last: int = 3
    log_every: int = 10
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0: torch's default (per DDP rank: cores / ranks)
    context: int = 8  # frames of context before open-loop prediction (evaluation)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, e.g. data path

    @property
    def stoch_size(self) -> int:
        return self.stoch * self.classes

    @property
    def body_size(self) -> int:
        """The continuous part of the state: what the body senses, then 3 per tracked point (rssm.py)."""
        return BODY_DIM + 3 * self.track_points if self.body_state else 0

    @property
    def feat_size(self) -> int:
        return self.deter + self.stoch_size + self.body_size

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        names = {f.name for f in dataclasses.fields(cls)}
        # Heads added later are off in configs written before they existed: such models have none.
        for name in ("ego_scale", "scene_scale", "body_state", "body_drop", "body_scale", "overshoot_reward_scale",
                     "contact", "contact_dirs", "track_motion_weight"):
            if name not in d:
                d = {**d, name: 0}
        d = {**d, "body_state": bool(d["body_state"]), "contact": bool(d["contact"]), "contact_dirs": bool(d["contact_dirs"]), "reward_heads": int(d.get("reward_heads", 1)),
             "track_points": int(d.get("track_points", 0))}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"config.json has unknown fields {sorted(unknown)}: written by a newer egoworld?")
        return cls(**d)

    def replace(self, **overrides: Any) -> "Config":
        return dataclasses.replace(self, **overrides)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU, minutes: what the tests and the 20-minute acceptance run use. One torch thread: on the
    # shared 2-vCPU machine a tiny step ran 4× faster with 1 thread than with 2 (bench/train.py).
    "tiny": dict(threads=1),
    # CPU, about an hour.
    "small": dict(cnn_depth=32, deter=384, stoch=32, classes=16, hidden=384, seq_len=32, batch_size=16,
                  reward_bins=101, overshoot=8, overshoot_stride=4, minutes=60.0, val_every=500, ckpt_every=500),
    # GPU.
    "base": dict(image_size=128, cnn_depth=48, deter=1024, stoch=32, classes=32, hidden=768, head_layers=2,
                 seq_len=64, batch_size=32, reward_bins=255, reward_range=20.0, overshoot=16, overshoot_stride=8,
                 lr=3e-4, minutes=240.0, val_every=1000, ckpt_every=1000),
}


def preset(name: str, **overrides: Any) -> Config:
    """The named preset with ``overrides`` applied (``None`` values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    fields = dict(PRESETS[name], preset=name)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return Config(**fields)
