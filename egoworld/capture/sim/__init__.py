"""The embedded data source: a MuJoCo egocentric rig (head camera, two hands, scripted people).

MuJoCo renders off-screen; with no display we pick EGL before mujoco is first imported.
"""
import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
