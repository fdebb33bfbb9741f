"""Receive and publish rates of candidate MQTT client libraries against a local Mosquitto.

Run with `make bench` (or `.venv/bin/python bench/mqtt_clients.py [--messages N]`).
Starts its own broker with the project's configuration, measures Mosquitto's own C
clients in the same run as the baseline, prints a table and writes
bench/results/mqtt_clients.json. Payloads are 63-byte JSON readings, QoS 0 unless said.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt  # noqa: E402
import gmqtt  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402

from gateway.credentials import Credentials  # noqa: E402
from gateway.localstack import Broker  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402

PAYLOAD = b'{"seq":123456,"ts":"2026-11-22T10:00:00.000Z","temperature":21.5}'[:63].ljust(63, b" ")
TIMEOUT = 60.0
RESULTS = Path(__file__).resolve().parent / "results" / "mqtt_clients.json"


class Bench:
    def __init__(self, broker: Broker, messages: int) -> None:
        self.broker = broker
        self.messages = messages
        self.password = broker.credentials.mqtt["admin"]
        self.auth = ["-u", "admin", "-P", self.password, "-p", str(broker.port), "-h", "127.0.0.1"]

    # -- the C clients: baseline publisher and subscriber ---------------------------------
    def c_publisher(self, topic: str, qos: int = 0) -> subprocess.Popen:
        return subprocess.Popen(["mosquitto_pub", *self.auth, "-t", topic, "-q", str(qos), "-l"], stdin=subprocess.PIPE)

    def feed(self, process: subprocess.Popen) -> None:
        line = PAYLOAD + b"\n"
        chunk = line * 1000
        for _ in range(self.messages // 1000):
            process.stdin.write(chunk)
        process.stdin.close()

    def c_subscriber(self, topic: str, qos: int = 0, timestamps: bool = False) -> subprocess.Popen:
        """mosquitto_sub for N messages; with `timestamps` it prints each arrival time (%U: unix time, ns)."""
        output = ["-F", "%U"] if timestamps else ["-F", ""]
        return subprocess.Popen(["mosquitto_sub", *self.auth, "-t", topic, "-q", str(qos), "-C", str(self.messages),
                                 *output],
                                stdout=subprocess.PIPE if timestamps else subprocess.DEVNULL)

    @staticmethod
    def settle() -> None:
        """mosquitto_sub gives no readiness signal; half a second is ample for it to subscribe."""
        time.sleep(0.5)

    # -- measurements ------------------------------------------------------------------
    def c_baseline(self) -> float:
        """C publisher into C subscriber, timed like the clients: first to last arrival."""
        topic = "bench/c"
        subscriber = self.c_subscriber(topic, timestamps=True)
        self.settle()
        publisher = self.c_publisher(topic)
        self.feed(publisher)
        arrivals = subscriber.communicate(timeout=TIMEOUT)[0].split()
        publisher.wait(TIMEOUT)
        first, last = float(arrivals[0]), float(arrivals[-1])
        return (len(arrivals) - 1) / (last - first)

    def receive_rate(self, subscribe) -> float:
        """Rate at which `subscribe(topic, done)` receives a C publisher's flood."""
        topic = f"bench/rx/{time.monotonic_ns()}"
        counter = {"n": 0, "first": 0.0, "last": 0.0}
        done = threading.Event()
        ready = threading.Event()
        thread = threading.Thread(target=subscribe, args=(topic, counter, ready, done, self), daemon=True)
        thread.start()
        if not ready.wait(20):
            raise RuntimeError("subscriber not ready")
        publisher = self.c_publisher(topic)
        self.feed(publisher)
        publisher.wait(TIMEOUT)
        done.wait(TIMEOUT)
        thread.join(5)
        if counter["n"] < self.messages:
            print(f"  (received {counter['n']} of {self.messages})")
        return (counter["n"] - 1) / max(counter["last"] - counter["first"], 1e-9)

    def publish_rate(self, publish) -> float:
        """Rate at which `publish(topic, bench)` gets messages to a C subscriber."""
        topic = f"bench/tx/{time.monotonic_ns()}"
        subscriber = self.c_subscriber(topic)
        self.settle()
        start = time.perf_counter()
        publish(topic, self)
        try:
            subscriber.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            subscriber.kill()
            return float("nan")
        return self.messages / (time.perf_counter() - start)


def count(counter: dict, bench: Bench, done: threading.Event) -> None:
    """Count one arrival; the rate is (n - 1) / (last - first), as for the C baseline."""
    now = time.perf_counter()
    if counter["n"] == 0:
        counter["first"] = now
    counter["n"] += 1
    counter["last"] = now
    if counter["n"] >= bench.messages:
        done.set()


# -- gmqtt ------------------------------------------------------------------------------
def gmqtt_receive(topic, counter, ready, done, bench):
    async def main():
        client = gmqtt.Client(f"rx-gmqtt-{time.monotonic_ns()}")
        client.set_auth_credentials("admin", bench.password)
        client.on_message = lambda c, t, p, q, props: count(counter, bench, done) or 0
        subscribed = asyncio.Event()
        client.on_subscribe = lambda *args: subscribed.set()
        await client.connect("127.0.0.1", bench.broker.port)
        client.subscribe(topic, qos=0)
        await subscribed.wait()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, done.wait, TIMEOUT)
        await client.disconnect()
    asyncio.run(main())


def gmqtt_publish(topic, bench):
    async def main():
        client = gmqtt.Client(f"tx-gmqtt-{time.monotonic_ns()}")
        client.set_auth_credentials("admin", bench.password)
        await client.connect("127.0.0.1", bench.broker.port)
        for n in range(bench.messages):
            client.publish(topic, PAYLOAD, qos=0)
            if n % 1000 == 0:
                await asyncio.sleep(0)  # let the transport write
        await asyncio.sleep(0.5)
        await client.disconnect()
    asyncio.run(main())


# -- paho-mqtt (threaded network loop) --------------------------------------------------
def paho_client(name: str, bench: Bench) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{name}-{time.monotonic_ns()}",
                         protocol=paho.MQTTv5)
    client.username_pw_set("admin", bench.password)
    client.max_queued_messages_set(0)
    return client


def paho_receive(topic, counter, ready, done, bench):
    client = paho_client("rx-paho", bench)
    client.on_message = lambda c, u, m: count(counter, bench, done)
    client.on_subscribe = lambda *args: ready.set()
    client.connect("127.0.0.1", bench.broker.port)
    client.subscribe(topic, 0)
    client.loop_start()
    done.wait(TIMEOUT)
    client.disconnect()
    client.loop_stop()


def paho_publish(topic, bench):
    client = paho_client("tx-paho", bench)
    client.connect("127.0.0.1", bench.broker.port)
    client.loop_start()
    for _ in range(bench.messages):
        client.publish(topic, PAYLOAD, qos=0)
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


# -- aiomqtt ----------------------------------------------------------------------------
def aiomqtt_receive(topic, counter, ready, done, bench):
    async def main():
        async with aiomqtt.Client("127.0.0.1", bench.broker.port, username="admin", password=bench.password,
                                  identifier=f"rx-aiomqtt-{time.monotonic_ns()}",
                                  max_queued_incoming_messages=0) as client:
            await client.subscribe(topic, qos=0)
            ready.set()
            async for _ in client.messages:
                count(counter, bench, done)
                if done.is_set():
                    break
    asyncio.run(main())


def aiomqtt_publish(topic, bench):
    async def main():
        async with aiomqtt.Client("127.0.0.1", bench.broker.port, username="admin", password=bench.password,
                                  identifier=f"tx-aiomqtt-{time.monotonic_ns()}") as client:
            for _ in range(bench.messages):
                await client.publish(topic, PAYLOAD, qos=0)
    asyncio.run(main())


# -- the project's transport (gmqtt, QoS 1, acknowledged per message) -------------------
def transport_receive_qos1(topic, counter, ready, done, bench):
    async def main():
        config = ClientConfig(f"rx-transport-{time.monotonic_ns()}", port=bench.broker.port, username="admin",
                              password=bench.password, clean_start=True, session_expiry=0, receive_maximum=65535)
        async with MqttTransport(config) as transport:
            await transport.subscribe(topic, qos=1)
            ready.set()
            while not done.is_set():
                delivery = await transport.receive(timeout=1)
                if delivery is not None:
                    delivery.ack()
                    count(counter, bench, done)
    asyncio.run(main())


def transport_publish_qos1(topic, bench):
    async def main():
        config = ClientConfig(f"tx-transport-{time.monotonic_ns()}", port=bench.broker.port, username="admin",
                              password=bench.password, clean_start=True, session_expiry=0)
        async with MqttTransport(config) as transport:
            for n in range(bench.messages):
                transport.publish(Message(topic, PAYLOAD))
                if n % 1000 == 0:
                    await asyncio.sleep(0)
            await transport.flush(TIMEOUT)
    asyncio.run(main())


CANDIDATES = [
    ("gmqtt 0.8.0", gmqtt_receive, gmqtt_publish),
    ("paho-mqtt 2.2.0 (threaded loop)", paho_receive, paho_publish),
    ("aiomqtt 2.5.1", aiomqtt_receive, aiomqtt_publish),
    ("gateway transport (gmqtt, QoS 1, ack each)", transport_receive_qos1, transport_publish_qos1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        credentials = Credentials.load_or_create(Path(state) / "credentials.json")
        broker = Broker(Path(state) / "mosquitto", credentials, [])
        broker.start()
        try:
            bench = Bench(broker, args.messages)
            limit = bench.c_baseline()
            rows = []
            for name, receive, publish in CANDIDATES:
                print(f"measuring {name} ...", file=sys.stderr)
                rows.append({"client": name, "receive": bench.receive_rate(receive),
                             "publish": bench.publish_rate(publish)})
        finally:
            broker.stop()
    print(f"\n{args.messages:,} messages of {len(PAYLOAD)} bytes, QoS 0 unless said; "
          f"baseline mosquitto_pub -> mosquitto_sub (C): {limit:,.0f} msg/s\n")
    print("| client | receive msg/s | publish msg/s | receive / C baseline |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['client']} | {row['receive']:,.0f} | {row['publish']:,.0f} | {row['receive'] / limit:.2f} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"messages": args.messages, "c_baseline": limit, "clients": rows}, indent=2))


if __name__ == "__main__":
    main()
