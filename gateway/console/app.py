"""The console's HTTP API and files (docs/console.md, "The API").

JSON everywhere; an error is `{"error": "..."}`: 400 for bad input, 404 for what does not exist, 503
when InfluxDB or the broker is unavailable, never a stack trace. The live parts answer from memory, so
they keep working while InfluxDB is down. Whatever came from a device or a service is data inside
JSON: no HTML is ever built from it.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidInput, StoreError
from ..history import time_bound, validate_event_id
from ..topics import validate_id
from . import metrics
from .feed import Feed
from .live import LiveState
from .lookups import HistoryLookups
from .recent import event_dict
from .security import Guard
from .stream import StreamClient, StreamFilter, sse
from .trace import chain
from .vendor import VENDOR_FILES

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_DIR = Path(__file__).resolve().parents[2] / "tools" / "console" / "node_modules"
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
               ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}
SERVICES_EVERY = 5.0  # seconds between `services` events on a stream
TICK = 1.0  # at most one `skipped` and one `map` event a second
MAX_REJECTED = 1000


@dataclass
class Console:
    """What the handlers answer from."""

    live: LiveState
    lookups: HistoryLookups
    feed: Feed
    static_dir: Path = STATIC_DIR
    vendor_dir: Path = VENDOR_DIR


def build_app(console: Console, token: str | None) -> ASGIApp:
    """The whole application, behind the guard (security.py)."""
    api = Api(console)
    routes = [
        Route("/", api.index),
        Route("/static/{file}", api.static),
        Route("/vendor/{file}", api.vendor),
        Route("/api/map", api.map),
        Route("/api/services", api.services),
        Route("/api/stream", api.stream),
        Route("/api/trace/{id:path}", api.trace),  # any rest of the path is an id, refused with a reason
        Route("/api/device/{id:path}", api.device),
        Route("/api/rejected", api.rejected),
        Route("/metrics", api.metrics),
    ]
    handlers: dict[Any, Callable] = {HTTPException: _http_error, InvalidInput: _bad_input, StoreError: _no_history,
                                     Exception: _internal_error}
    return Guard(Starlette(routes=routes, exception_handlers=handlers), token)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else f"no such page: {request.url.path}"
    return error(exc.status_code, message)


async def _bad_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return error(400, exc.message)


async def _no_history(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)
    return error(503, f"the stored history is unavailable: {exc.message}")


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("the console failed on %s", request.url.path, exc_info=exc)
    return error(500, "internal error in the console (logged)")


class Api:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.live

    # -- files -----------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        page = self.console.static_dir / "index.html"
        if not page.is_file():
            return error(503, f"the console's pages are missing ({page}): reinstall the package")
        return FileResponse(page, media_type=MEDIA_TYPES[".html"])

    async def static(self, request: Request) -> Response:
        name = request.path_params["file"]
        folder = self.console.static_dir
        if not (FILE_NAME.fullmatch(name) and folder.is_dir() and name in _files(folder)):
            raise HTTPException(404, f"no file {name[:100]!r} among the console's files")
        return FileResponse(folder / name, media_type=MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"))

    async def vendor(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in VENDOR_FILES:
            raise HTTPException(404, f"no library {name[:100]!r}; the console serves {', '.join(VENDOR_FILES)}")
        path = self.console.vendor_dir / VENDOR_FILES[name]
        if not path.is_file():
            return error(503, f"{name} is not installed ({path}): run make setup")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"))

    # -- the live state ----------------------------------------------------------------------
    def _require_broker(self) -> None:
        if not self.live.connected:
            raise HTTPException(503, f"not connected to the broker at {self.console.feed.broker} (retrying): "
                                     "the live state is unknown")

    async def map(self, request: Request) -> Response:
        self._require_broker()
        return JSONResponse(self.live.map())

    async def services(self, request: Request) -> Response:
        self._require_broker()
        return JSONResponse(self.live.services())

    async def stream(self, request: Request) -> Response:
        stream_filter = StreamFilter.of(request.query_params)
        client = self.live.clients.add(stream_filter)
        if client is None:
            raise HTTPException(503, f"{self.live.clients.limit} streams are open already; close one")
        return EventStream(self._events(request, client), lambda: self.live.clients.close(client))

    async def _events(self, request: Request, client: StreamClient) -> AsyncIterator[str]:
        """The facts as they come; once a second what changed; every SERVICES_EVERY seconds the state."""
        sent = _Sent(self.live.version, self.live.connected)
        yield "retry: 2000\n\n" + self._state_events(include_map=True)
        start = time.monotonic()
        next_tick, next_services = start + TICK, start + SERVICES_EVERY
        while not client.closed:
            await client.wait(max(0.0, next_tick - time.monotonic()))
            chunk = [sse("fact", row) for row in client.take()]
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK
                if await request.is_disconnected():
                    return
                chunk += self._changes(client, sent)
            if now >= next_services:
                next_services = now + SERVICES_EVERY
                chunk.append(self._state_events(include_map=False))
            if chunk:
                yield "".join(chunk)

    def _changes(self, client: StreamClient, sent: _Sent) -> list[str]:
        """What was skipped since the last call, and the map and the broker's state if they changed."""
        live, events = self.live, []
        if skipped := client.take_skipped():
            events.append(sse("skipped", {"skipped": skipped}))
        if live.version != sent.version:
            sent.version = live.version
            events.append(sse("map", live.map()))
        if live.connected != sent.connected:
            sent.connected = live.connected
            events.append(sse("broker", {"connected": sent.connected}))
        return events

    def _state_events(self, include_map: bool) -> str:
        live = self.live
        events = [sse("map", live.map())] if include_map else []
        events += [sse("services", live.services()), sse("rates", {"rates": live.rates.rates(time.time())}),
                   sse("broker", {"connected": live.connected})]
        return "".join(events)

    # -- the stored history, with the live facts -----------------------------------------------
    async def trace(self, request: Request) -> Response:
        event_id = validate_event_id(request.path_params["id"])
        since = _since(request, "7d")
        correlation = self.live.recent.correlation_of(event_id)
        history_error = None
        try:
            stored = await self.console.lookups.chain(event_id, correlation, since)
        except StoreError as exc:
            if correlation is None:
                raise
            stored, history_error = [], f"the stored history is unavailable: {exc.message}"
        correlation = correlation or (stored[0]["correlationid"] if stored else None)
        recent = [event_dict(event) for event in self.live.recent.chain(correlation)] if correlation else []
        result = chain(stored, recent)
        if result is None:
            raise HTTPException(404, f"no event {event_id} (nor a chain with that correlation id) in the stored "
                                     f"history of the last {since} or among the recent live facts")
        if history_error:
            result["history_error"] = history_error
        return JSONResponse(result)

    async def device(self, request: Request) -> Response:
        device = validate_id(request.path_params["id"])
        return JSONResponse(await self.console.lookups.device(device, _since(request, "1h")))

    async def rejected(self, request: Request) -> Response:
        limit = _limit(request.query_params.get("limit"), 200, MAX_REJECTED)
        stored = await self.console.lookups.rejected(_since(request, "7d"), limit)
        rows = {row["id"]: row for row in [*stored, *self.live.recent.rejected]}
        newest = sorted(rows.values(), key=lambda row: row["time"], reverse=True)
        return JSONResponse(newest[:limit])

    # -- metrics ---------------------------------------------------------------------------------
    async def metrics(self, request: Request) -> Response:
        live, clients = self.live, self.live.clients
        console = {"facts_received": live.counts["facts_received"], "skipped": clients.skipped_total,
                   "clients": len(clients.open), "queued": clients.queued,
                   "dropped": self.console.feed.stats.dropped, "connected": int(live.connected)}
        return PlainTextResponse(metrics.exposition(live.services(), console, live.counts),
                                 media_type=metrics.CONTENT_TYPE)


@dataclass
class _Sent:
    """What one stream last sent of the map's version and the broker's state."""

    version: int
    connected: bool


class EventStream(StreamingResponse):
    """`text/event-stream`; `on_close` runs however the stream ends, a client gone included."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        self.content = content
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()
            aclose = getattr(self.content, "aclose", None)
            if aclose is not None:
                await aclose()


def _files(folder: Path) -> set[str]:
    """The regular files directly in `folder`, by exact name (no symbolic link, no sub-folder)."""
    return {path.name for path in folder.iterdir() if path.is_file() and not path.is_symlink()}


def _since(request: Request, default: str) -> str:
    since = request.query_params.get("since") or default
    time_bound(since, "since")  # InvalidInput names the problem
    return since


def _limit(text: str | None, default: int, maximum: int) -> int:
    if text is None or text == "":
        return default
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= maximum:
        raise InvalidInput(f"limit {text[:20]!r}: expected a whole number from 1 to {maximum}")
    return int(text)
