"""The action-conditioned latent world model (torch only; never touches files).

Read in this order: ``config.py`` (every hyper-parameter, presets), ``nets.py`` (building
blocks), ``rssm.py`` (the dynamics), ``world_model.py`` (encoder + RSSM + decoder + heads),
``losses.py`` (one-step ELBO + open-loop loss).
"""
from egoworld.model.config import PRESETS, Config, preset
from egoworld.model.losses import world_model_loss
from egoworld.model.nets import Noise
from egoworld.model.rssm import RSSM, State
from egoworld.model.world_model import Ref, WorldModel

__all__ = ["Config", "PRESETS", "preset", "WorldModel", "Ref", "RSSM", "State", "Noise", "world_model_loss"]
