"""`egoworld play RUN`: torch, FastAPI and uvicorn are imported inside the command body only."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def play_command(
    run: Path = typer.Argument(..., help="A training run folder (its best checkpoint) or a checkpoint folder."),
    data: Optional[str] = typer.Option(None, "--data", help="The episode store the starts come from (default: the one the model was trained on, from its lineage)."),
    task: str = typer.Option("push", "--task", help="The task whose recorded episodes the dream starts from."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0: any free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but localhost lets other machines drive the model."),
    starts: int = typer.Option(16, "--starts", min=1, help="Real starting points to cycle through (N: new start)."),
    split: str = typer.Option("all", help="Split the starts come from (train, val, heldout, all)."),
    twin: Optional[bool] = typer.Option(None, "--twin/--no-twin", help="The simulator beside the dream (default: when the starts are simulated sessions on disk)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where saved episodes go (default: play/ beside the store)."),
    sample: bool = typer.Option(False, "--sample", help="Sample the prior's latents (a livelier, less repeatable dream) instead of taking their modes."),
    seed: int = typer.Option(0, help="Same seed → same starts and, with --sample, the same dream."),
    threads: int = typer.Option(1, min=0, help="torch CPU threads (0: torch's default)."),
) -> None:
    """Drive the dream yourself in a browser, beside the simulator twin: keys for the head and wrists, a planner to hand over to."""
    def fail(e: Exception | str) -> typer.Exit:
        typer.echo(f"error: {e}", err=True)
        return typer.Exit(2)

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise fail(f"egoworld play needs the web app's packages ({e.name} is missing): pip install -e '.[play]'") from None
    from egoworld.play.game import PlayError
    from egoworld.play.server import bind, is_loopback, url_of

    try:
        sock = bind(host, port)
    except PlayError as e:
        raise fail(e) from None
    try:
        import torch

        from egoworld.play.game import load_world

        if threads:
            torch.set_num_threads(threads)
        world = load_world(run, data, task, starts=starts, split=split, twin=twin, out=out, sample=sample, seed=seed)
    except PlayError as e:
        sock.close()
        raise fail(e) from None
    except BaseException:
        sock.close()
        raise
    from egoworld.play.server import serve

    url = url_of(sock)
    typer.echo(f"egoworld play: {url}  ({world.task}, {len(world.starts)} real starts, "
               f"{'dream + simulator twin' if world.twin else 'dream only'}; saved episodes go to {world.out}; Ctrl-C stops)")
    if not is_loopback(host):
        typer.echo(f"warning: listening on {host}: anyone who can reach this machine on port {sock.getsockname()[1]} "
                   "can drive the model and save episodes", err=True)
    serve(world, sock)


def register(app: typer.Typer) -> None:
    """Add `play` to the egoworld CLI."""
    app.command("play")(play_command)
