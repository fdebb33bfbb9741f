"""InfluxDB 1.x HTTP API: `/write` with line protocol and `/query` with InfluxQL.

Also the v1-compatibility endpoints of InfluxDB 2.x and 3.x. Blocking calls on the
standard library's HTTP client; the sink runs them in a worker thread.
"""
from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

from ..errors import StoreError
from ..settings import InfluxSettings
from .refusal import refusal


class InfluxV1:
    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self._headers = {}
        if settings.token:
            self._headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            token = base64.b64encode(f"{settings.username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"

    def write(self, lines: list[str]) -> None:
        """Write points with nanosecond timestamps; StoreError says whether a retry can help."""
        params = {"db": self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        body = ("\n".join(lines) + "\n").encode()
        self._request("/write", params, body, "text/plain; charset=utf-8")

    def query(self, statement: str) -> list[dict]:
        """Run one InfluxQL statement; returns its series (name, tags, columns, values)."""
        params = {"db": self.settings.database, "q": statement, "epoch": "ns"}
        body = urllib.parse.urlencode(params).encode()
        response = json.loads(self._request("/query", {}, body, "application/x-www-form-urlencoded"))
        result = response.get("results", [{}])[0]
        if "error" in result:
            raise StoreError(f"InfluxDB refused the query: {result['error']}")
        return result.get("series", [])

    def _request(self, path: str, params: dict[str, str], body: bytes, content_type: str) -> bytes:
        url = f"{self.settings.url.rstrip('/')}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, data=body, headers={**self._headers, "Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        except http.client.HTTPException as exc:  # a connection cut mid-answer
            raise StoreError(f"InfluxDB at {self.settings.url} broke off its answer: {exc!r}", retryable=True) from None
        except OSError as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreError(f"InfluxDB at {self.settings.url} unreachable: {reason}", retryable=True) from None

    @staticmethod
    def _refusal(exc: urllib.error.HTTPError) -> StoreError:
        try:
            message = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError, OSError, http.client.HTTPException):
            message = ""
        return refusal(exc.code, message or exc.reason, exc.headers)
