"""``egoworld import FORMAT SRC --out DIR``: one command for every importer (heavy imports inside)."""
from __future__ import annotations

from pathlib import Path

import typer

from egoworld.cluster import RAY_HELP


def _import_folder(fmt: str, folder: Path, out: Path, ray: str | None, options: dict) -> None:
    from egoworld.capture.importers.folder import import_folder
    from egoworld.cluster import ClusterError

    try:
        done, failed = import_folder(fmt, folder, out, options, ray)
    except (ValueError, FileNotFoundError, ClusterError) as e:
        typer.echo(f"import failed: {e}", err=True)
        raise typer.Exit(2) from e
    for p in done:
        typer.echo(f"wrote {p}")
    for name, why in failed:
        typer.echo(f"left out {name}: {why}", err=True)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``import`` command to the main egoworld app."""

    @app.command("import")
    def import_command(
        fmt: str = typer.Argument(..., metavar="FORMAT", help="camera | generic | egodex | aria | lerobot"),
        src: Path = typer.Argument(..., help="The video (mp4/mov/… any codec FFmpeg decodes); lerobot: the dataset root."),
        out: Path = typer.Option(..., "--out", help="Session folder to write (replaced atomically if it exists); "
                                                    "lerobot --all-episodes: the folder that receives one session per episode."),
        consent: str | None = typer.Option(None, help="research | commercial | none | a consent JSON/YAML file; "
                                                          "without it the session is marked 'unknown' (not cleared)."),
        camera: Path | None = typer.Option(None, "--camera", help="Intrinsics: OpenCV (camera_matrix, dist_coeffs) or Kalibr camchain."),
        hfov: float | None = typer.Option(None, help="Assumed horizontal FOV (deg) when there is no --camera file."),
        telemetry: Path | None = typer.Option(None, help="camera: telemetry file (.gcsv; Sensor Logger Gyroscope.csv, "
                                                             "its folder or its zip) if not embedded/sidecar."),
        stabilised: str = typer.Option("auto", help="camera: in-camera stabilisation yes | no | auto (from metadata)."),
        imu: Path | None = typer.Option(None, help="generic: IMU CSV/Parquet."),
        head_pose: Path | None = typer.Option(None, "--head-pose", help="generic: head pose CSV/Parquet."),
        map_: list[str] | None = typer.Option(None, "--map", help="generic: ours=theirs column map, e.g. t=timestamp,gx=gyro_x"),
        time_unit: str = typer.Option("s", help="generic: s | ms | us | ns"),
        gyro_unit: str = typer.Option("rad/s", help="generic: rad/s | deg/s"),
        accel_unit: str = typer.Option("m/s2", help="generic: m/s2 | g"),
        imu_clock: str = typer.Option("imu", help="generic: clock name of the IMU file ('camera' = stamped by the video clock)."),
        head_clock: str = typer.Option("tracker", help="generic: clock name of the head pose file."),
        hdf5: Path | None = typer.Option(None, help="egodex: the HDF5 (default: SRC with .hdf5)."),
        min_confidence: float = typer.Option(0.0, help="egodex: drop hand rows below this joint confidence."),
        mps: Path | None = typer.Option(None, help="aria: the MPS output folder (slam/…)."),
        video_start_us: int | None = typer.Option(None, help="aria: device time (µs) of the MP4's first frame."),
        episode: int = typer.Option(0, help="lerobot: the episode_index to import."),
        all_episodes: bool = typer.Option(False, "--all-episodes", help="lerobot: one session per episode under --out."),
        camera_key: str | None = typer.Option(None, "--camera-key", help="lerobot: video feature, e.g. observation.images.front."),
        state_map: list[str] | None = typer.Option(None, "--state-map", help="lerobot: head_pose=FEATURE[a:b] (7 values) or "
                                                                                  "imu=FEATURE[a:b] (6 values); repeatable."),
        quat_order: str = typer.Option("wxyz", help="lerobot: quaternion order in a --state-map head_pose (wxyz | xyzw)."),
        ray: str | None = typer.Option(None, "--ray", metavar="[ADDRESS]", help="camera/egodex with a folder SRC: " + RAY_HELP),
    ) -> None:
        """Turn one recording in a real format into a raw session (streams on native clocks + consent).

        camera and egodex also take a folder of recordings: each becomes OUT/<file stem>."""
        from egoworld.session import SessionError

        if src.is_dir() and fmt != "lerobot":
            _import_folder(fmt, src, out, ray, {"consent": consent, "camera_file": camera, "hfov_deg": hfov, "stabilised": stabilised}
                           if fmt == "camera" else {"consent": consent, "min_confidence": min_confidence})
            return
        try:
            if fmt == "camera":
                from egoworld.capture.importers.camera import import_camera

                path = import_camera(src, out, consent=consent, telemetry=telemetry, camera_file=camera, hfov_deg=hfov,
                                     stabilised=stabilised)
            elif fmt == "generic":
                from egoworld.capture.importers.common import parse_map
                from egoworld.capture.importers.generic import import_generic

                path = import_generic(src, out, imu=imu, head_pose=head_pose, colmap=parse_map(map_), time_unit=time_unit,
                                      gyro_unit=gyro_unit, accel_unit=accel_unit, imu_clock=imu_clock, head_clock=head_clock,
                                      camera_file=camera, hfov_deg=hfov, consent=consent)
            elif fmt == "egodex":
                from egoworld.capture.importers.egodex import import_egodex

                path = import_egodex(src, out, hdf5=hdf5, consent=consent, min_confidence=min_confidence)
            elif fmt == "aria":
                from egoworld.capture.importers.aria import import_aria

                if mps is None:
                    raise typer.BadParameter("aria needs --mps FOLDER")
                path = import_aria(src, out, mps, consent=consent, video_start_us=video_start_us)
            elif fmt == "lerobot":
                from egoworld.capture.importers.lerobot import (
                    import_lerobot,
                    import_lerobot_all,
                    parse_state_map,
                )

                kw = {"camera_key": camera_key, "state_map": parse_state_map(state_map), "quat_order": quat_order,
                      "gyro_unit": gyro_unit, "accel_unit": accel_unit, "consent": consent, "camera_file": camera,
                      "hfov_deg": hfov}
                if all_episodes:
                    paths = import_lerobot_all(src, out, **kw)
                    for p in paths:
                        typer.echo(f"wrote {p}")
                    return
                path = import_lerobot(src, out, episode=episode, **kw)
            else:
                raise typer.BadParameter(f"unknown format {fmt!r} (camera, generic, egodex, aria, lerobot)")
        except SessionError as e:
            typer.echo(f"import failed: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(f"wrote {path}")
