"""Sync: clock offset + drift of every motion clock against the video, and the aligned episode.

``sync_session(path, out)`` does one session (see pipeline.py); ``sync_command`` (cli.py) a
folder of them. Method, evidence per stream, output columns and limits: docs/sync.md.
"""
from egoworld.sync.estimate import ClockFit, Limits
from egoworld.sync.pipeline import sync_session

__all__ = ["ClockFit", "Limits", "sync_session"]
