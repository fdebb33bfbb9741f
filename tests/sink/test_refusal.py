"""Both writers turn an InfluxDB error answer into the same StoreError: status, retryable, Retry-After."""
from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from gateway.errors import StoreError
from gateway.settings import load_settings
from gateway.sink.refusal import refusal
from gateway.sink.writers import writer_for


@pytest.mark.parametrize(
    "status, retry_after, retryable, delay",
    [(429, "7", True, 7.0), (503, None, True, None), (503, "Wed, 21 Oct 2026 07:28:00 GMT", True, None),
     (400, "7", False, 7.0), (401, None, False, None)],
)
def test_the_status_decides_retryable_and_retry_after_gives_the_delay(status, retry_after, retryable, delay):
    headers = {"Retry-After": retry_after} if retry_after else {}
    error = refusal(status, "no", headers)
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, delay)
    assert error.message == f"InfluxDB answered {status}: no"


class _Refusing(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"code":"too many requests","message":"slow down","error":"slow down"}'
        self.send_response(429)
        self.send_header("Retry-After", "3")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def refusing_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_both_writers_map_a_429_with_retry_after_alike(refusing_url, api):
    settings = load_settings({"CHOREO_INFLUX_API": api, "CHOREO_INFLUX_URL": refusing_url,
                              "CHOREO_INFLUX_ORG": "choreo", "CHOREO_INFLUX_TOKEN": "t"}).influx
    with pytest.raises(StoreError) as refused:
        writer_for(settings).write(["m f=1 1"])
    assert (refused.value.status, refused.value.retryable, refused.value.retry_after) == (429, True, 3.0)
    assert refused.value.message.startswith("InfluxDB answered 429: ")
    assert "slow down" in refused.value.message
