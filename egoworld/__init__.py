"""egoworld: first-person capture to an action-conditioned latent world model."""

__version__ = "0.1.0"
