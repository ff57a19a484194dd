"""Importers: one module per real capture format, each writing a raw session (docs/session-format.md).

``camera`` (telemetry-parser: GoPro GPMF, Sony, Insta360, DJI, .gcsv, phone loggers), ``generic``
(video + CSV/Parquet with a column map), ``egodex`` (MP4 + HDF5), ``aria`` (Project Aria MPS, with hand tracking), ``lerobot`` (LeRobot v3 episodes).
Pages: docs/importers/<format>.md. The CLI is ``egoworld import FORMAT SRC --out DIR`` (cli.py).
"""
FORMATS = ("camera", "generic", "egodex", "aria", "lerobot")
