"""The web app: one page and one WebSocket, served by uvicorn on localhost.

Why a WebSocket: a frame answers each step the page asks for, so the page never runs ahead of the
model (a slow step slows the game, it does not queue frames), and key presses arrive in order with
the steps they shape. Each connection gets its own ``Game`` on its own worker thread: the twin's
MuJoCo renderer holds an EGL context that belongs to the thread that made it, and the event loop
stays free while a step runs.

Messages from the page: ``{"type": "key", "code", "down"}``, ``{"type": "step"}``, ``{"type": "restart"}``,
``{"type": "new", "start"?}``, ``{"type": "planner", "on"?}``, ``{"type": "save"}``. To the page:
``hello`` (the session and the key table), ``frame`` (``Game``'s frames), ``saved``, ``error``.
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from egoworld.play.game import Game, PlayError, World
from egoworld.play.keys import COMMANDS

PAGE = Path(__file__).with_name("page.html")


def handle(game: Game, msg: Any) -> dict | None:
    """One message from the page → the reply (None: nothing to send)."""
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise PlayError(f"a message must be an object with a 'type', got {str(msg)[:60]!r}")
    kind = msg["type"]
    if kind == "key":
        code = str(msg.get("code", ""))
        out = game.key(code, bool(msg.get("down", True)))
        kind = COMMANDS.get(code, kind)  # a command key answers as its command does
    elif kind == "step":
        out = game.step()
    elif kind in ("restart", "new", "planner", "save"):
        out = game.command(kind, **{k: msg[k] for k in ("start", "on") if k in msg})
    else:
        raise PlayError(f"unknown message type {kind!r}; known: key, step, restart, new, planner, save")
    return None if out is None else dict(out, reply=kind)  # the page paces its steps by the "step" replies


def make_app(world: World) -> FastAPI:
    """The FastAPI app: ``/`` the page, ``/api/info`` the session, ``/ws`` the game."""
    app = FastAPI(title="egoworld play", docs_url=None, redoc_url=None, openapi_url=None)
    page = PAGE.read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/info")
    def info() -> dict:
        return world.describe()

    @app.websocket("/ws")
    async def play(ws: WebSocket) -> None:
        await ws.accept()
        pool = ThreadPoolExecutor(1, thread_name_prefix="egoworld-play")
        loop = asyncio.get_running_loop()

        def call(f: Callable, *a: Any) -> asyncio.Future:
            return loop.run_in_executor(pool, functools.partial(f, *a))

        game: Game | None = None
        try:
            game = await call(Game, world)
            await ws.send_json({"type": "hello", **world.describe()})
            await ws.send_json(dict(await call(game.reset, 0), reply="hello"))
            while True:
                msg = await ws.receive_json()
                try:
                    reply = await call(handle, game, msg)
                except PlayError as e:
                    reply = {"type": "error", "message": str(e)}
                except Exception as e:  # keep the game alive; the traceback goes to the server's log
                    traceback.print_exc()
                    reply = {"type": "error", "message": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                if reply is not None:
                    await ws.send_json(reply)
        except WebSocketDisconnect:
            pass
        finally:
            if game is not None:
                await call(game.close)
            pool.shutdown(wait=False)

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); ``PlayError`` when the port is taken."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise PlayError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse a port in TIME_WAIT, never a live one
    try:
        sock.bind(addr)
        sock.listen(16)
    except OSError as e:
        sock.close()
        raise PlayError(f"port {port} on {host} is busy ({e.strerror}); pass another --port, or stop what listens there") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def serve(world: World, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve the game on an already bound socket until interrupted (Ctrl-C)."""
    import uvicorn

    config = uvicorn.Config(make_app(world), log_level=log_level, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
