"""`choreo console` as a process for the tests, read with the standard library's HTTP client and plain
sockets (never the product's code): raw paths, no redirects followed, the event stream parsed by hand."""
from __future__ import annotations

import http.client
import json
import socket
import threading
from dataclasses import dataclass

from gateway.localstack import free_ports
from tests.helpers import wait_for


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class ConsoleProcess:
    def __init__(self, services, env: dict[str, str], *args: str, name: str = "console") -> None:
        [self.port] = free_ports(1)
        self.name = name
        self.services = services
        self.process = services.start(name, ["console", "--port", str(self.port), *args], env)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def answers(self, path: str, status: int = 200) -> Answer | None:
        """The answer if it has `status`, else None (also while the console is not listening yet)."""
        try:
            answer = self.get(path)
        except OSError:
            return None
        return answer if answer.status == status else None

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self.answers("/api/map"), timeout,
                 f"the console to answer /api/map (log: {self.services.log_dir / (self.name + '.log')})")

    def metric(self, line_start: str) -> float | None:
        """The value of the first /metrics sample whose line starts with `line_start`."""
        for line in self.get("/metrics").body.decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None


class EventReader:
    """One `/api/stream` client on a plain socket. HTTP/1.0, so the body is the event stream as sent.

    With `read=False` it never reads: a stalled client."""

    def __init__(self, port: int, query: str = "", read: bool = True) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.sendall(f"GET /api/stream{query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.head = b""
        self.events: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if read:
            self._thread.start()

    def _read(self) -> None:
        buffer = b""
        self.socket.settimeout(0.2)
        while not self._stop.is_set():
            try:
                chunk = self.socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            if not self.head and b"\r\n\r\n" in buffer:
                self.head, buffer = buffer.split(b"\r\n\r\n", 1)
            while self.head and b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                self._parse(block.decode())

    def _parse(self, block: str) -> None:
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in fields:
            with self._lock:
                self.events.append((fields["event"], json.loads(fields["data"])))

    @property
    def status(self) -> int:
        return int(self.head.split()[1]) if self.head else 0

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}

    def of(self, kind: str) -> list:
        with self._lock:
            return [data for event, data in self.events if event == kind]

    def close(self) -> None:
        self._stop.set()
        self.socket.close()
        if self._thread.is_alive():
            self._thread.join(5)

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
