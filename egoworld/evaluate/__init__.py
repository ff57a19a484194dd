"""Evaluation: open-loop metrics vs horizon against baselines, state probes, counterfactual sensitivity.

The one room besides capture that may read a sim session's ``truth/`` (probe targets, replays).
"""
