"""``egoworld import FORMAT SRC --out DIR``: one subcommand per format, each with its own options (heavy imports inside)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import typer

from egoworld.cluster import RAY_HELP

OUT = typer.Option(..., "--out", help="Session folder to write (replaced atomically if it exists).")
CONSENT = typer.Option(None, help="research | commercial | none | a consent JSON/YAML file; "
                                  "without it the session is marked 'unknown' (not cleared).")
CAMERA = typer.Option(None, "--camera", help="Intrinsics: OpenCV (camera_matrix, dist_coeffs), Kalibr camchain or "
                                             "EuRoC/ASL sensor.yaml.")
HFOV = typer.Option(None, help="Assumed horizontal FOV (deg) when there is no --camera file.")


def _run(fn: Callable[[], Path | list[Path]]) -> None:
    """Call an importer; a bad input file exits 2 with the file and the problem."""
    from egoworld.session import SessionError

    try:
        paths = fn()
    except SessionError as e:
        typer.echo(f"import failed: {e}", err=True)
        raise typer.Exit(2) from e
    for p in paths if isinstance(paths, list) else [paths]:
        typer.echo(f"wrote {p}")


def _import_folder(fmt: str, folder: Path, out: Path, ray: str | None, options: dict) -> None:
    """A folder of recordings: each becomes OUT/<file stem>; one that cannot be imported is left out with its reason."""
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


RAY = typer.Option(None, "--ray", metavar="[ADDRESS]", help="With a folder SRC: " + RAY_HELP)


def camera_command(
    src: Path = typer.Argument(..., help="The clip (mp4/mov/…); GoPro GPMF, Sony, Insta360, DJI … telemetry is read from it."),
    out: Path = OUT,
    consent: str | None = CONSENT,
    camera: Path | None = CAMERA,
    hfov: float | None = HFOV,
    telemetry: Path | None = typer.Option(None, help="Telemetry file (.gcsv; Sensor Logger Gyroscope.csv, its folder or "
                                                     "its zip) if not embedded/sidecar."),
    stabilised: str = typer.Option("auto", help="In-camera stabilisation yes | no | auto (from the metadata)."),
    ray: str | None = RAY,
) -> None:
    """Action cameras and phones: the gyro/accelerometer the camera embedded (telemetry-parser).
    SRC may be a folder of clips: each becomes OUT/<file stem>."""
    from egoworld.capture.importers.camera import import_camera

    if src.is_dir():
        return _import_folder("camera", src, out, ray, {"consent": consent, "camera_file": camera, "hfov_deg": hfov,
                                                         "stabilised": stabilised})
    _run(lambda: import_camera(src, out, consent=consent, telemetry=telemetry, camera_file=camera, hfov_deg=hfov,
                               stabilised=stabilised))


def generic_command(
    src: Path = typer.Argument(..., help="The video (any codec FFmpeg decodes)."),
    out: Path = OUT,
    consent: str | None = CONSENT,
    camera: Path | None = CAMERA,
    hfov: float | None = HFOV,
    imu: Path | None = typer.Option(None, help="IMU CSV/Parquet."),
    head_pose: Path | None = typer.Option(None, "--head-pose", help="Head pose CSV/Parquet."),
    map_: list[str] | None = typer.Option(None, "--map", help="ours=theirs column map, e.g. t=timestamp,gx=gyro_x"),
    time_unit: str = typer.Option("s", help="s | ms | us | ns"),
    gyro_unit: str = typer.Option("rad/s", help="rad/s | deg/s"),
    accel_unit: str = typer.Option("m/s2", help="m/s2 | g"),
    imu_clock: str = typer.Option("imu", help="Clock name of the IMU file ('camera' = stamped by the video clock)."),
    head_clock: str = typer.Option("tracker", help="Clock name of the head pose file."),
    imu_to_camera: str | None = typer.Option(None, "--imu-to-camera", help="Rotation IMU → camera axes: 9 numbers "
                                             "(row-major R_camera_imu), a 4×4 T_cam_imu as 16 numbers, or a YAML/JSON "
                                             "file holding T_cam_imu / R_camera_imu; default: the --camera file's "
                                             "extrinsics (Kalibr T_cam_imu, EuRoC T_BS)."),
) -> None:
    """Any video + CSV/Parquet motion files, with a stated column map, units, clocks and IMU axes."""
    from egoworld.capture.importers.common import parse_map
    from egoworld.capture.importers.generic import import_generic, parse_imu_to_camera

    _run(lambda: import_generic(src, out, imu=imu, head_pose=head_pose, colmap=parse_map(map_), time_unit=time_unit,
                                gyro_unit=gyro_unit, accel_unit=accel_unit, imu_clock=imu_clock, head_clock=head_clock,
                                camera_file=camera, hfov_deg=hfov, consent=consent,
                                imu_to_camera=parse_imu_to_camera(imu_to_camera) if imu_to_camera else None))


def egodex_command(
    src: Path = typer.Argument(..., help="The EgoDex MP4."),
    out: Path = OUT,
    consent: str | None = CONSENT,
    hdf5: Path | None = typer.Option(None, help="The HDF5 (default: SRC with .hdf5)."),
    min_confidence: float = typer.Option(0.0, help="Drop hand rows below this joint confidence."),
    ray: str | None = RAY,
) -> None:
    """EgoDex: MP4 + HDF5 (camera pose, hand joints with confidences). SRC may be a folder of recordings."""
    from egoworld.capture.importers.egodex import import_egodex

    if src.is_dir():
        return _import_folder("egodex", src, out, ray, {"consent": consent, "min_confidence": min_confidence})
    _run(lambda: import_egodex(src, out, hdf5=hdf5, consent=consent, min_confidence=min_confidence))


def aria_command(
    src: Path = typer.Argument(..., help="An Aria .vrs recording (needs projectaria-tools), or the RGB stream as MP4."),
    out: Path = OUT,
    consent: str | None = CONSENT,
    mps: Path | None = typer.Option(None, help="The MPS output folder (trajectory, hand tracking); required with an MP4."),
    video_start_us: int | None = typer.Option(None, help="MP4 only: device time (µs) of its first frame."),
) -> None:
    """Project Aria: VRS (video + IMU on the device clock) and/or MPS (trajectory, hands)."""
    from egoworld.capture.importers.aria import import_aria

    _run(lambda: import_aria(src, out, mps, consent=consent, video_start_us=video_start_us))


def lerobot_command(
    src: Path = typer.Argument(..., help="The LeRobot dataset root."),
    out: Path = typer.Option(..., "--out", help="Session folder to write; with --all-episodes the folder that receives "
                                                "one session per episode."),
    consent: str | None = CONSENT,
    camera: Path | None = CAMERA,
    hfov: float | None = HFOV,
    episode: int = typer.Option(0, help="The episode_index to import."),
    all_episodes: bool = typer.Option(False, "--all-episodes", help="One session per episode under --out."),
    camera_key: str | None = typer.Option(None, "--camera-key", help="Video feature, e.g. observation.images.front."),
    state_map: list[str] | None = typer.Option(None, "--state-map", help="head_pose=FEATURE[a:b] (7 values) or "
                                                                         "imu=FEATURE[a:b] (6 values); repeatable."),
    quat_order: str = typer.Option("wxyz", help="Quaternion order in a --state-map head_pose (wxyz | xyzw)."),
    gyro_unit: str = typer.Option("rad/s", help="rad/s | deg/s"),
    accel_unit: str = typer.Option("m/s2", help="m/s2 | g"),
) -> None:
    """A LeRobot v2/v3 dataset: one episode (or all) with its video and state features."""
    from egoworld.capture.importers.lerobot import import_lerobot, import_lerobot_all, parse_state_map

    def go() -> Path | list[Path]:
        kw = {"camera_key": camera_key, "state_map": parse_state_map(state_map), "quat_order": quat_order,
              "gyro_unit": gyro_unit, "accel_unit": accel_unit, "consent": consent, "camera_file": camera, "hfov_deg": hfov}
        return import_lerobot_all(src, out, **kw) if all_episodes else import_lerobot(src, out, episode=episode, **kw)

    _run(go)


def register(app: typer.Typer) -> None:
    """Add the ``import`` command group (one command per format) to the egoworld CLI."""
    import_app = typer.Typer(help="Turn one recording in a real format into a raw session (streams on native clocks + consent).",
                             no_args_is_help=True)
    import_app.command("camera")(camera_command)
    import_app.command("generic")(generic_command)
    import_app.command("egodex")(egodex_command)
    import_app.command("aria")(aria_command)
    import_app.command("lerobot")(lerobot_command)
    app.add_typer(import_app, name="import")
