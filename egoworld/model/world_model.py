"""The world model: encoder → RSSM → decoder and heads, with the action normalisation it was trained with.

Reads tensors, returns tensors; never touches files (checkpoints are the training room's job).
The dataset's action statistics live in buffers, so ``model.safetensors`` alone reproduces the
model's behaviour on raw 138-D actions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from egoworld.model.config import Config
from egoworld.model.nets import (EGO_DIM, EGO_POS_SCALE, ConvDecoder, ConvEncoder, Noise, WarpDecoder, chained_rotations,
                                 egocentric, mlp, quat_matrix, symexp, to_head_frame)
from egoworld.model.rssm import RSSM, State
from egoworld.state import HEAD_P, HEAD_Q

MOVED_M = 0.002  # metres per frame: a tracked point moved (the tracker is exact in the simulator; ~6 cm/s at 30 fps)


@dataclass
class Ref:
    """What a frame is decoded relative to: a real frame and the feature filtered at it.

    Why: predicting a frame from scratch loses to "copy the last frame" for many steps; predicting
    how the last real frame changes (warp + new content) starts from it. ``image`` (B, 3, S, S)
    uint8, ``feat`` (B, F); decoded features may have extra dims after B (B, H, F).
    """

    image: torch.Tensor
    feat: torch.Tensor
    stages: list[torch.Tensor] | None = None  # the encoder's activations of ``image`` (filled by ``reference``)


class WorldModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg.image_size, cfg.cnn_depth, cfg.cnn_min_res)
        self.rssm = RSSM(cfg, self.encoder.embed_size)
        if cfg.decoder == "warp":
            self.decoder = WarpDecoder(cfg.feat_size, cfg.image_size, cfg.cnn_depth, cfg.cnn_min_res,
                                       self.encoder.stage_channels, extra=cfg.state_dim + 9,
                                       fov_deg=cfg.camera_fov_deg or None, rot_open=cfg.rotation_from == "action")
        elif cfg.decoder == "plain":
            self.decoder = ConvDecoder(cfg.feat_size, cfg.image_size, cfg.cnn_depth, cfg.cnn_min_res)
        else:
            raise ValueError(f"unknown decoder {cfg.decoder!r} (warp | plain)")
        # Heads read the feature [h, z, b]: the proprioceptive state (head + wrist poses) of that frame
        # (in imagination: the *next* state), task progress as twohot over symlog bins, continuation.
        self.state_head = mlp(cfg.feat_size, cfg.hidden, cfg.state_dim, cfg.head_layers)
        # ... and what of it the body senses and the eyes see: wrists in the head frame, gravity (``egocentric``).
        self.ego_head = mlp(cfg.feat_size, cfg.hidden, EGO_DIM, cfg.head_layers) if cfg.ego_scale > 0 else None
        # ... and the scene: the frame at ``scene_size`` from the feature alone. Why: the warp decoder
        # copies the reference frame's pixels through its skips, so nothing else makes the latent hold
        # where the furniture and objects are in view — and an imagined state that does not know
        # where the object is cannot be planned with (the state probe measured that).
        self.scene_head = ConvDecoder(cfg.feat_size, cfg.scene_size, cfg.cnn_depth, cfg.cnn_min_res) if cfg.scene_scale > 0 else None
        self.reward_head = mlp(cfg.feat_size, cfg.hidden, cfg.reward_bins, cfg.head_layers)
        # Further members of a reward ensemble (``reward_heads`` > 1): independently initialised heads on the
        # same feature agree where the data taught them and drift apart where it did not.
        self.reward_extra = nn.ModuleList(mlp(cfg.feat_size, cfg.hidden, cfg.reward_bins, cfg.head_layers)
                                          for _ in range(cfg.reward_heads - 1))
        self.cont_head = mlp(cfg.feat_size, cfg.hidden, 1, cfg.head_layers)
        nn.init.zeros_(self.reward_head[-1].weight)  # DreamerV3: start reward predictions at 0
        nn.init.zeros_(self.reward_head[-1].bias)
        self.register_buffer("action_mean", torch.zeros(cfg.action_dim))
        self.register_buffer("action_std", torch.ones(cfg.action_dim))
        self.register_load_state_dict_post_hook(lambda module, keys: module._share_action_stats())
        self.register_buffer("reward_bins", torch.linspace(-cfg.reward_range, cfg.reward_range, cfg.reward_bins))

    # --- inputs ---
    def set_action_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Normalise actions with the training set's per-dimension mean/std (std floored: some dims are constant)."""
        self.action_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.action_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-4))
        self._share_action_stats()

    def _share_action_stats(self) -> None:
        """The RSSM's body kinematics works in metres: give it the statistics (after setting or loading them)."""
        self.rssm.act_mean.copy_(self.action_mean)
        self.rssm.act_std.copy_(self.action_std)

    def norm_action(self, action: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.action_blind:
            return torch.zeros_like(action)
        a = ((action - self.action_mean) / self.action_std).clamp(-10, 10)
        if valid is not None:
            a = a * valid.unsqueeze(-1).to(a.dtype)
        return a

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) uint8 → (B, T, E)."""
        B, T = image.shape[:2]
        return self.encoder(image.flatten(0, 1)).reshape(B, T, -1)

    def sense(self, state: torch.Tensor | None, shape: tuple[int, int], present: torch.Tensor | None = None,
              objects: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The 21-D body states (B, T, 21) → what the body part of the latent is given: ``egocentric`` (B, T, 9)
        and where it is known (B, T) — rows with NaN, or ``present`` False, are not. None without a body part
        or without states (a goal image, a caller that only has frames: the model trained with such gaps,
        ``body_drop``). With ``track_points`` the tracked ``objects`` (B, T, 3·P, world frame) follow, and
        ``known`` is per coordinate (B, T, D)."""
        if not self.cfg.body_state or state is None:
            return None, None
        if tuple(state.shape[:2]) != tuple(shape):
            raise ValueError(f"state {tuple(state.shape)} does not match {tuple(shape)} frames: one row per frame")
        state = state.float()
        known = torch.isfinite(state).all(-1)
        if present is not None:
            known = known & present.bool()
        body = egocentric(torch.where(known[..., None], state, torch.zeros_like(state)))
        if not self.cfg.track_points:
            return body, known
        points, seen = self.tracked(state, objects)
        seen = seen & known[..., None]  # a point is placed in the head frame only with the head's pose
        mask = torch.cat([known[..., None].expand(body.shape), seen], -1)
        return torch.cat([body, torch.where(seen, points, torch.zeros_like(points))], -1), mask

    def tracked(self, state: torch.Tensor, objects: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tracked world points (..., 3·P) → the head frame of ``state`` (..., 3·P, / EGO_POS_SCALE) and where
        each coordinate is known (a point with any NaN, or no tracker at all, is not)."""
        P = self.cfg.track_points
        lead = state.shape[:-1]
        if objects is None:
            return torch.zeros(lead + (3 * P,)), torch.zeros(lead + (3 * P,), dtype=torch.bool)
        pts = objects.float()[..., :3 * P].reshape(lead + (P, 3))
        ok = torch.isfinite(pts).all(-1) & torch.isfinite(state).all(-1)[..., None]
        st = torch.where(torch.isfinite(state), state.float(), torch.zeros_like(state.float()))
        pts = torch.where(ok[..., None], pts, torch.zeros_like(pts))
        head = to_head_frame(pts, st[..., None, HEAD_P], st[..., None, HEAD_Q]) / EGO_POS_SCALE
        return head.flatten(-2), ok[..., None].expand(lead + (P, 3)).flatten(-2)

    def body_target(self, state: torch.Tensor, objects: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What the body part should be at each frame (..., body_size) and the weight of each coordinate
        (1 where known): the ego head's target, then the tracked points."""
        ego = egocentric(state)
        if not self.cfg.track_points:
            return ego, torch.ones_like(ego)
        points, seen = self.tracked(state, objects)
        weight = seen.to(ego.dtype)
        if self.cfg.track_motion_weight and objects is not None and objects.dim() >= 3 and objects.shape[-2] > 1:
            weight = weight * (1 + self.cfg.track_motion_weight * self.moved(objects).to(ego.dtype))
        return torch.cat([ego, points], -1), torch.cat([torch.ones_like(ego), weight], -1)

    def moved(self, objects: torch.Tensor) -> torch.Tensor:
        """(…, T, 3·P) tracked world points → (…, T, 3·P): True on a point's coordinates at the frames where it
        moved more than ``MOVED_M`` since the frame before (the first frame: False). Why: the frames where the
        hands move an object are a few per cent of the data and the ones a planner needs right."""
        P = self.cfg.track_points
        pts = objects.float()[..., :3 * P].unflatten(-1, (P, 3))
        step = (pts[..., 1:, :, :] - pts[..., :-1, :, :]).norm(dim=-1)
        hit = torch.nan_to_num(step, nan=0.0) > MOVED_M
        hit = torch.cat([torch.zeros_like(hit[..., :1, :]), hit], -2)
        return hit.unsqueeze(-1).expand(hit.shape + (3,)).flatten(-2)

    # --- outputs ---
    def reference(self, image: torch.Tensor, feat: torch.Tensor) -> Ref:
        """The reference a rollout is decoded against: the last real frame (B, 3, S, S) and its state feature (B, F)."""
        stages = self.encoder.stages(image) if self.cfg.decoder == "warp" else None
        return Ref(image, feat, stages)

    def head_rotation(self, action: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor | None:
        """The camera's orientation after each of K raw actions (B, K, A), in the frame where they start.

        The action's head part is the head's own rotation step (axis-angle in the camera frame), so
        chaining them is exact — it is what the body did, not a guess. Identity for the action-blind
        model; ``None`` when the config reads rotations from the state head instead.
        """
        if self.cfg.decoder != "warp" or self.cfg.rotation_from != "action":
            return None
        w = action[..., 3:6]
        if self.cfg.action_blind:
            w = torch.zeros_like(w)
        elif valid is not None:
            w = w * valid.unsqueeze(-1).to(w.dtype)
        return chained_rotations(w)

    def decode(self, feat: torch.Tensor, ref: Ref | None = None, rot: torch.Tensor | None = None) -> torch.Tensor:
        """Features (B, ..., F) → image means (B, ..., 3, S, S) in [0, 1] (unclipped), relative to ``ref``.

        The warp decoder needs ``ref`` (the frame the prediction changes); the plain one ignores it.
        ``rot`` (B, K, 3, 3): the camera's rotation since the reference (``head_rotation`` of the
        actions in between); without it, it is read from the state head's predicted orientations.
        """
        lead = feat.shape[:-1]
        if self.cfg.decoder == "plain":
            img = self.decoder(feat.reshape(-1, feat.shape[-1]))
            return img.reshape(lead + img.shape[1:])
        if ref is None:
            raise ValueError("the warp decoder needs a reference frame: decode(feat, model.reference(image, feat0))")
        B = ref.feat.shape[0]
        f = feat.reshape(B, -1, feat.shape[-1])
        stages = ref.stages if ref.stages is not None else self.encoder.stages(ref.image)
        # the body's move since the reference, as the state head reads it: where the warp comes from
        with torch.no_grad():
            st, st_ref = self.state_head(f), self.state_head(ref.feat)[:, None]
            if rot is None:  # head orientation at the target in the reference camera's frame
                rot = quat_matrix(symexp(st_ref[..., HEAD_Q])).transpose(-1, -2) @ quat_matrix(symexp(st[..., HEAD_Q]))
            rot = rot.reshape(f.shape[:2] + (3, 3))
            rel = torch.cat([st - st_ref, rot.flatten(-2)], -1)
        img = self.decoder(f, ref.feat, ref.image, self.decoder.skips(stages), rel, rot)
        return img.reshape(lead + img.shape[1:])

    def scene(self, feat: torch.Tensor) -> torch.Tensor:
        """Features (B, ..., F) → the frame at ``scene_size`` (B, ..., 3, s, s), from the latent alone."""
        if self.scene_head is None:
            raise ValueError("this model has no scene head (scene_scale = 0)")
        img = self.scene_head(feat.reshape(-1, feat.shape[-1]))
        return img.reshape(feat.shape[:-1] + img.shape[1:])

    def reward_heads(self) -> list[nn.Module]:
        return [self.reward_head, *self.reward_extra]

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        """Predicted reward (the ensemble's mean when there are several heads)."""
        return self.reward_members(feat).mean(0)

    def reward_members(self, feat: torch.Tensor) -> torch.Tensor:
        """Each reward head's prediction (K, ...)."""
        return torch.stack([symexp((h(feat).softmax(-1) * self.reward_bins).sum(-1)) for h in self.reward_heads()])

    def cont(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.cont_head(feat).squeeze(-1))

    # --- filtering and imagination ---
    def observe(self, image: torch.Tensor, action: torch.Tensor, valid: torch.Tensor | None = None,
                noise: Noise | None = None, sample: bool = True, state: torch.Tensor | None = None,
                objects: torch.Tensor | None = None) -> tuple[State, torch.Tensor]:
        """Posterior states (B, T, ·) and prior probs for a clip of raw images, raw actions [and body states,
        tracked objects]."""
        body, known = self.sense(state, image.shape[:2], objects=objects)
        return self.rssm.observe(self.embed(image), self.norm_action(action, valid), noise, sample, body, known)

    def imagine(self, start: State, action: torch.Tensor, sample: bool = False, noise: Noise | None = None) -> State:
        """Open-loop states (B, H, ·) after ``start`` under raw actions (B, H, A)."""
        return self.rssm.imagine(start, self.norm_action(action), noise, sample)

    @torch.no_grad()
    def open_loop(self, context: torch.Tensor, action: torch.Tensor, sample: bool = False,
                  valid: torch.Tensor | None = None, state: torch.Tensor | None = None,
                  objects: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """Predict frames C…C+H-1 from C context frames (B, C, 3, S, S) and raw actions (B, C-1+H, A).

        ``action[:, t]`` moves frame t to t+1, so the first C-1 actions are used while filtering
        the context and the remaining H drive the imagination. Latents take the mode unless
        ``sample``: a prediction, not a dream. ``state`` (B, ≥C, 21): the body states of the context frames
        (``objects`` (B, ≥C, 6): what the object tracker reported with them).
        """
        pred, _, states = self.predict(context, action, sample, valid, state, objects)
        return pred, states

    @torch.no_grad()
    def predict(self, context: torch.Tensor, action: torch.Tensor, sample: bool = False,
                valid: torch.Tensor | None = None, state: torch.Tensor | None = None,
                objects: torch.Tensor | None = None) -> tuple[torch.Tensor, State, State]:
        """``open_loop`` that also returns the filtered context states (B, C, ·) — probes read both."""
        C = context.shape[1]
        act = self.norm_action(action, valid)
        posts, _ = self.observe(context, action[:, :C], valid if valid is None else valid[:, :C], sample=sample,
                                state=None if state is None else state[:, :C],
                                objects=None if objects is None else objects[:, :C])
        last = posts.last()
        states = self.rssm.imagine(last, act[:, C - 1:], sample=sample)
        ref = self.reference(context[:, -1], last.feat())
        rot = self.head_rotation(action[:, C - 1:], None if valid is None else valid[:, C - 1:])
        return self.decode(states.feat(), ref, rot).clamp(0, 1), posts, states
