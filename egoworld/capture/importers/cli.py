"""``egoworld import FORMAT SRC --out DIR``: one command for every importer (heavy imports inside)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``import`` command to the main egoworld app."""

    @app.command("import")
    def import_command(
        fmt: str = typer.Argument(..., metavar="FORMAT", help="camera | generic | egodex | aria"),
        src: Path = typer.Argument(..., help="The video (mp4/mov/… any codec FFmpeg decodes)."),
        out: Path = typer.Option(..., "--out", help="Session folder to write (replaced atomically if it exists)."),
        consent: Optional[str] = typer.Option(None, help="research | commercial | none | a consent JSON/YAML file; "
                                                          "without it the session is marked 'unknown' (not cleared)."),
        camera: Optional[Path] = typer.Option(None, "--camera", help="Intrinsics: OpenCV (camera_matrix, dist_coeffs) or Kalibr camchain."),
        hfov: Optional[float] = typer.Option(None, help="Assumed horizontal FOV (deg) when there is no --camera file."),
        telemetry: Optional[Path] = typer.Option(None, help="camera: telemetry file (.gcsv, sensor-logger) if not embedded/sidecar."),
        stabilised: str = typer.Option("auto", help="camera: in-camera stabilisation yes | no | auto (from metadata)."),
        imu: Optional[Path] = typer.Option(None, help="generic: IMU CSV/Parquet."),
        head_pose: Optional[Path] = typer.Option(None, "--head-pose", help="generic: head pose CSV/Parquet."),
        map_: Optional[list[str]] = typer.Option(None, "--map", help="generic: ours=theirs column map, e.g. t=timestamp,gx=gyro_x"),
        time_unit: str = typer.Option("s", help="generic: s | ms | us | ns"),
        gyro_unit: str = typer.Option("rad/s", help="generic: rad/s | deg/s"),
        accel_unit: str = typer.Option("m/s2", help="generic: m/s2 | g"),
        imu_clock: str = typer.Option("imu", help="generic: clock name of the IMU file ('camera' = stamped by the video clock)."),
        head_clock: str = typer.Option("tracker", help="generic: clock name of the head pose file."),
        hdf5: Optional[Path] = typer.Option(None, help="egodex: the HDF5 (default: SRC with .hdf5)."),
        min_confidence: float = typer.Option(0.0, help="egodex: drop hand rows below this joint confidence."),
        mps: Optional[Path] = typer.Option(None, help="aria: the MPS output folder (slam/…)."),
        video_start_us: Optional[int] = typer.Option(None, help="aria: device time (µs) of the MP4's first frame."),
    ) -> None:
        """Turn one recording in a real format into a raw session (streams on native clocks + consent)."""
        from egoworld.session import SessionError

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
            else:
                raise typer.BadParameter(f"unknown format {fmt!r} (camera, generic, egodex, aria)")
        except SessionError as e:
            typer.echo(f"import failed: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(f"wrote {path}")
