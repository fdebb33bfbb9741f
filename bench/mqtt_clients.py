"""The transport's CPU per relayed message, and receive and publish rates of MQTT clients, against a local Mosquitto.

Run with `make bench` (or `.venv/bin/python bench/mqtt_clients.py [--messages N] [--baseline DIR]`).
Starts its own broker with the project's configuration. First the PUBLISH codec alone, the
transport's own against the mqtt5 package's (Rust). Then the relay: a consumer that
publishes one message per delivery at QoS 1, as ingest and the reactors do, in alternating
runs of this tree's transport and, with `--baseline DIR` (a `git worktree` of an earlier
commit), of that one; it prints CPU microseconds per message and the ratio within each round
and writes bench/results/mqtt_relay.json. Then receive and publish rates of the client
libraries and of the transport against Mosquitto's own C clients, measured in the same run as
the baseline, into bench/results/mqtt_clients.json. Payloads are 63 bytes, QoS 0 unless said.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt  # noqa: E402
import mqtt5  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402

from gateway.credentials import Credentials  # noqa: E402
from gateway.localstack import Broker  # noqa: E402
from gateway.transport import ClientConfig, Message, MqttTransport  # noqa: E402
from gateway.transport.framing import split_packets  # noqa: E402
from gateway.transport.packets import parse_publish, publish_packet  # noqa: E402

PAYLOAD = b'{"seq":123456,"ts":"2026-11-22T10:00:00.000Z","temperature":21.5}'[:63].ljust(63, b" ")
TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mqtt_clients.json"
RELAY_RESULTS = ROOT / "bench" / "results" / "mqtt_relay.json"


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


# -- the project's transport (QoS 1, acknowledged per message) -----------------------------
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


# -- a consumer that publishes one message per delivery (as ingest and the reactors do) ------
RELAY_WORKER = """
import asyncio, json, os, sys, time
sys.path.insert(0, sys.argv[1])  # the code to measure: this tree, or a worktree of an earlier commit
from gateway.transport import ClientConfig, Message, MqttTransport

async def relay():
    count = int(os.environ["RELAY_COUNT"])
    config = ClientConfig(f"relay-{time.monotonic_ns()}", port=int(os.environ["RELAY_PORT"]), username="admin",
                          password=os.environ["RELAY_PASSWORD"], clean_start=True, session_expiry=0)
    async with MqttTransport(config) as transport:
        await transport.subscribe(os.environ["RELAY_IN"])
        print("ready", flush=True)
        received, start_cpu, start, out = 0, 0.0, 0.0, os.environ["RELAY_OUT"]
        while received < count:
            delivery = await transport.receive()
            if received == 0:
                start_cpu, start = time.process_time(), time.perf_counter()
            received += 1
            message = delivery.message
            delivery.ack_when([transport.publish(Message(out, message.payload))])
        await transport.flush(60)
        cpu, seconds = time.process_time() - start_cpu, time.perf_counter() - start
    print(json.dumps({"cpu": cpu, "seconds": seconds, "module": MqttTransport.__module__}), flush=True)

asyncio.run(relay())
"""


def relay_run(bench: Bench, source: Path) -> dict:
    """One relay of bench.messages QoS 1 messages by the transport in `source`: CPU microseconds per message."""
    topic = f"bench/relay/{time.monotonic_ns()}"
    env = {**os.environ, "RELAY_PORT": str(bench.broker.port), "RELAY_PASSWORD": bench.password,
           "RELAY_COUNT": str(bench.messages), "RELAY_IN": f"{topic}/in", "RELAY_OUT": f"{topic}/out"}
    worker = subprocess.Popen([sys.executable, "-c", RELAY_WORKER, str(source)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the relay from {source} did not start")
    publisher = bench.c_publisher(f"{topic}/in", qos=1)
    bench.feed(publisher)
    publisher.wait(TIMEOUT)
    result = json.loads(worker.communicate(timeout=TIMEOUT)[0])
    return {"cpu_us": result["cpu"] / bench.messages * 1e6, "rate": bench.messages / result["seconds"],
            "module": result["module"]}


def relay_rounds(bench: Bench, sources: dict[str, Path], rounds: int) -> dict[str, list[dict]]:
    """Alternating runs of every source, `rounds` times, so a shared machine's noise hits all alike."""
    runs: dict[str, list[dict]] = {name: [] for name in sources}
    for _ in range(rounds):
        for name, source in sources.items():
            print(f"relaying with {name} ...", file=sys.stderr)
            runs[name].append(relay_run(bench, source))
    return runs


def print_relay(runs: dict[str, list[dict]], messages: int) -> None:
    print(f"\nrelay: {messages:,} QoS 1 messages from mosquitto_pub, each published again at QoS 1 and "
          "acknowledged once that publish is; medians of alternating runs, and of the ratios within each round\n")
    print("| transport | CPU us/message | msg/s | CPU / current, same round |")
    print("|---|---:|---:|---:|")
    for name, name_runs in runs.items():
        cpu = statistics.median(run["cpu_us"] for run in name_runs)
        rate = statistics.median(run["rate"] for run in name_runs)
        ratio = statistics.median(run["cpu_us"] / current["cpu_us"]
                                  for run, current in zip(name_runs, runs["current"], strict=True))
        print(f"| {name} ({name_runs[0]['module']}) | {cpu:.1f} | {rate:,.0f} | {ratio:.2f} |")


# -- codecs alone: the transport's own against the mqtt5 package (Rust) -------------------
CODEC_TOPIC = "events/reading.v1/lab-temperature-1"
BURST = 50  # packets framed and parsed together, as they arrive in one read


def codec_figures(repeat: int = 5, packets: int = 100_000) -> dict[str, float]:
    """Best-of-`repeat` microseconds per PUBLISH to encode, and to frame and parse into our Message."""
    message = Message(CODEC_TOPIC, PAYLOAD)
    burst = publish_packet(message, 7) * BURST
    qos1 = mqtt5.QoS.AT_LEAST_ONCE

    def ours_parse() -> None:
        for first_byte, body in split_packets(burst)[0]:
            parse_publish(first_byte, body)

    def mqtt5_parse() -> None:
        view, position = memoryview(burst), 0
        while position < len(burst):
            packet, length = mqtt5.read(view[position:])
            position += length
            Message(packet.topic, packet.payload, int(packet.qos), packet.retain)

    cases = {
        "ours encode": (lambda: publish_packet(message, 7), packets),
        "mqtt5 encode": (lambda: mqtt5.PublishPacket(CODEC_TOPIC, PAYLOAD, qos=qos1, packet_id=7).write(), packets),
        "ours parse": (ours_parse, packets // BURST),
        "mqtt5 parse": (mqtt5_parse, packets // BURST),
    }
    return {name: min(timeit.repeat(function, number=number, repeat=repeat)) / packets * 1e6
            for name, (function, number) in cases.items()}


def print_codecs(figures: dict[str, float]) -> None:
    print(f"\ncodec: a PUBLISH of a {len(CODEC_TOPIC)}-byte topic and a {len(PAYLOAD)}-byte payload, "
          f"best of five; parse frames bursts of {BURST} and makes our Message\n")
    print("| codec | encode us | parse us |")
    print("|---|---:|---:|")
    for codec in ("ours", "mqtt5"):
        print(f"| {codec} | {figures[f'{codec} encode']:.2f} | {figures[f'{codec} parse']:.2f} |")


CANDIDATES = [
    ("paho-mqtt 2.2.0 (threaded loop)", paho_receive, paho_publish),
    ("aiomqtt 2.5.1", aiomqtt_receive, aiomqtt_publish),
    ("gateway transport (own codec, QoS 1, ack each)", transport_receive_qos1, transport_publish_qos1),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--relay-messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating relay runs of each transport")
    parser.add_argument("--baseline", type=Path,
                        help="also relay with the transport in this directory (a git worktree of an earlier commit)")
    parser.add_argument("--relay-only", action="store_true", help="measure the relay only, not the client table")
    args = parser.parse_args()
    sources = {"current": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    with tempfile.TemporaryDirectory() as state:
        credentials = Credentials.load_or_create(Path(state) / "credentials.json")
        broker = Broker(Path(state) / "mosquitto", credentials, [])
        broker.start()
        try:
            codecs = codec_figures()
            relays = relay_rounds(Bench(broker, args.relay_messages), sources, args.rounds)
            bench = Bench(broker, args.messages)
            limit, rows = float("nan"), []
            if not args.relay_only:
                limit = bench.c_baseline()
                for name, receive, publish in CANDIDATES:
                    print(f"measuring {name} ...", file=sys.stderr)
                    rows.append({"client": name, "receive": bench.receive_rate(receive),
                                 "publish": bench.publish_rate(publish)})
        finally:
            broker.stop()
    print_codecs(codecs)
    print_relay(relays, args.relay_messages)
    RESULTS.parent.mkdir(exist_ok=True)
    RELAY_RESULTS.write_text(json.dumps({"messages": args.relay_messages, "runs": relays}, indent=2))
    if args.relay_only:
        return
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
