"""Independent checks for the tests: a plain HTTP InfluxQL client, a paho-mqtt observer, waiting on conditions.

None of this uses the product's transport, sink or history code, so the product never
certifies itself.
"""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import paho.mqtt.client as paho

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(condition: Callable[[], T | Awaitable[T]], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


def influx_query(url: str, user: str, password: str, statement: str, database: str = "choreo") -> list[dict]:
    """Rows of an InfluxQL query as dicts (column -> value), times in nanoseconds."""
    body = urllib.parse.urlencode({"db": database, "q": statement, "epoch": "ns"}).encode()
    request = urllib.request.Request(f"{url}/query", data=body)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.loads(response.read())["results"][0]
    assert "error" not in result, result["error"]
    rows = []
    for series in result.get("series", []):
        for values in series["values"]:
            rows.append({**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))})
    return rows


class MqttObserver:
    """A paho-mqtt client that records what it receives, for checks made outside the product."""

    def __init__(self, port: int, username: str, password: str, client_id: str = "test-observer") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_message
        self.port = port

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(message)

    def __enter__(self) -> MqttObserver:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe(topic_filter, qos)
        assert subscribed.wait(10), f"no SUBACK for {topic_filter}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def publish_all(self, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
        """Publish in order without waiting for each acknowledgement, then wait for all of them."""
        pending = [self.client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in pending:
            info.wait_for_publish(30)

    def on(self, topic_prefix: str) -> list[paho.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(topic_prefix)]

    def manifests(self, name: str) -> list[dict]:
        """The manifests received of service `name` and its partitions, not the counters published below them."""
        prefix = f"choreo/services/{name}"
        return [json.loads(m.payload) for m in self.on(prefix)
                if (m.topic == prefix or m.topic.startswith(prefix + "/")) and not m.topic.endswith("/counters")
                and m.payload]


def connack(port: int, username: str | None, password: str | None = None) -> paho.ReasonCode:
    """The broker's answer to one MQTT 5 CONNECT with these credentials (None: anonymous)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"login-{uuid.uuid4().hex[:6]}",
                         protocol=paho.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    answers = []
    client.on_connect = lambda c, u, flags, reason, props: answers.append(reason)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_for(lambda: answers, 10, "the broker's answer")
    finally:
        client.disconnect()
        client.loop_stop()
    return answers[0]
