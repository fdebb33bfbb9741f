"""`choreo console`: the feed from the broker and the web server, in one process and one event loop.

The HTTP side starts at once and answers while the broker is still unreachable (the live parts with
503 until the feed is connected). SIGTERM or SIGINT stops both: the streams end, the server closes,
the feed disconnects.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn

from ..errors import ChoreoError
from ..service import serve
from ..settings import Settings
from .app import Console, build_app
from .feed import Feed
from .live import LiveState
from .lookups import HistoryLookups
from .security import check_exposure, load_token

log = logging.getLogger(__name__)

GRACE_SECONDS = 2


def run_console(settings: Settings, host: str, port: int, token_file: str | None) -> int:
    """Check the exposure and the token before anything opens, then serve until stopped."""
    token = load_token(token_file)
    check_exposure(host, token)
    listener = listen(host, port)
    return serve("console", lambda stop: _main(settings, listener, token, stop))


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a clear error, not a server's exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise ChoreoError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener.set_inheritable(True)
    return listener


def address(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _main(settings: Settings, listener: socket.socket, token: str | None, stop: asyncio.Event) -> None:
    live = LiveState()
    feed = Feed(settings.mqtt, live)
    app = build_app(Console(live, HistoryLookups(settings.influx), feed), token)
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, timeout_graceful_shutdown=GRACE_SECONDS)
    print(f"console: {address(listener)}", flush=True)
    log.info("console on %s%s", address(listener), " (token required)" if token else "")
    try:
        await _run(uvicorn.Server(config), listener, feed, stop)
    finally:
        with contextlib.suppress(OSError):
            listener.close()
        log.info("console counted %s, skipped %d, %s", dict(live.counts), live.clients.skipped_total,
                 feed.stats.as_dict())


async def _run(server: uvicorn.Server, listener: socket.socket, feed: Feed, stop: asyncio.Event) -> None:
    """Serve and feed until `stop` is set or either ends; then end the streams, stop both, and raise
    whatever ended either with an error (the broker refusing the account, say)."""
    feeding = asyncio.create_task(feed.run(stop))
    tasks = {feeding, asyncio.create_task(server.serve(sockets=[listener])), asyncio.create_task(stop.wait())}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    feed.live.clients.end_all()
    server.should_exit = True
    if not feed.live.connected:
        feeding.cancel()  # perhaps still waiting for the broker
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
