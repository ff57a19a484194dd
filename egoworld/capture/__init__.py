"""Capture: where sessions come from (the MuJoCo egocentric rig, importers of real formats).

Never imports torch.
"""
