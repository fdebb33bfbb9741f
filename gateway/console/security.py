"""Who may use the console, and the headers every response carries.

On a loopback address the console needs no token, but then only a Host header naming a loopback
address is served, so that a web page elsewhere cannot reach it through DNS rebinding. On any other
address it does not start without a token; with a token, every request needs `Authorization: Bearer
TOKEN` or the `choreo_console` cookie that `GET /?token=TOKEN` sets. The token is never logged.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError

TOKEN_VARIABLE = "CHOREO_CONSOLE_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "choreo_console"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer")]
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) is reachable from this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(token_file: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The token from `token_file`, else from CHOREO_CONSOLE_TOKEN, else None; ConfigError if unusable."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {token_file}: cannot read it: {getattr(exc, 'strerror', None) or exc}")\
                from None
        where = f"--token-file {token_file}"
    else:
        token = env.get(TOKEN_VARIABLE, "").strip()
        where = TOKEN_VARIABLE
        if not token:
            return None
    if len(token) < MIN_TOKEN_LENGTH or any(char.isspace() or not char.isprintable() for char in token):
        raise ConfigError(f"{where}: the token must be at least {MIN_TOKEN_LENGTH} printable characters without "
                          "spaces (e.g. the output of `openssl rand -hex 32`)")
    return token


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if token is None and not is_loopback(host):
        raise ConfigError(f"--host {host} is not a loopback address: the console needs a token there "
                          f"(--token-file PATH or {TOKEN_VARIABLE})")


class Guard:
    """ASGI middleware around the whole application: access control, then the security headers on
    every response, the refusals and errors included."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token
        self.cookie_value = (hmac.new(token.encode(), COOKIE.encode(), hashlib.sha256).hexdigest()
                             if token else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        refusal = self.refusal(scope)
        if refusal is not None:
            await _respond(send_with_headers, *refusal)
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, dict[str, str], list[tuple[bytes, bytes]]] | None:
        """None when the request may pass; else the status, JSON body and extra headers to answer with."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if self.token is None:
            return _loopback_host(headers.get("host", ""))
        login = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if scope["path"] == "/" and login:
            return self._login(login[0])
        presented = _bearer(headers.get("authorization", ""))
        if presented is not None:
            return None if hmac.compare_digest(presented.encode(), self.token.encode()) else _wrong_token()
        cookie = _cookie(headers.get("cookie", ""))
        if cookie is not None:
            return None if hmac.compare_digest(cookie.encode(), (self.cookie_value or "").encode()) else _wrong_token()
        return (401, {"error": "this console needs its token: open /?token=TOKEN once, or send "
                               "Authorization: Bearer TOKEN"}, [(b"www-authenticate", b"Bearer")])

    def _login(self, presented: str) -> tuple[int, dict[str, str], list[tuple[bytes, bytes]]]:
        if not hmac.compare_digest(presented.encode(), (self.token or "").encode()):
            return _wrong_token()
        cookie = f"{COOKIE}={self.cookie_value}; HttpOnly; SameSite=Strict; Path=/"
        return 303, {"location": "/"}, [(b"location", b"/"), (b"set-cookie", cookie.encode())]


def _loopback_host(host_header: str) -> tuple[int, dict[str, str], list[tuple[bytes, bytes]]] | None:
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    if is_loopback(host):
        return None
    return (403, {"error": f"Host {host_header[:100]!r} is not a loopback name: open the console at "
                           "http://127.0.0.1:PORT/ (a console on another address needs a token)"}, [])


def _wrong_token() -> tuple[int, dict[str, str], list[tuple[bytes, bytes]]]:
    return 403, {"error": "wrong token"}, []


def _bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _cookie(header: str) -> str | None:
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _respond(send: Send, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]) -> None:
    content = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": content})
