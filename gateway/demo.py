"""`choreo demo`: a broker, InfluxDB and every service as child processes, with a live view of the facts.

Servers start first, then the consumers (the sink, the bridge, every installed reactor, ingest), then the
devices, each once the previous ones announced themselves; a reactor starts before the reactors
whose facts it consumes. On stop the devices go first and the sink last, so in-flight events
drain into InfluxDB.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from .announced import AnnouncedSchemas
from .declarations import declarations
from .errors import ChoreoError, InvalidInput
from .events import decode_event
from .history import summarize
from .localstack import REPO, LocalStack, free_ports
from .manifest import Manifest
from .plugins import build_reactors
from .reactor import Reactor
from .service import EXIT_FAILED, EXIT_OK
from .settings import Settings, load_fleet, load_settings
from .sink.influx_v1 import InfluxV1
from .sink.schema import EVENTS, READINGS
from .topics import SCHEMAS_FILTER
from .transport import ClientConfig, Message, MqttTransport

# Local defaults that make the choreography visible within seconds: the sample fleet
# (a 60 s simulated day; the lab swings between 20 and 30 Cel) and an alert after
# 2 s above 28 Cel, which the climate reactor answers by switching the lab's fan on.
DEMO_SETTINGS = {
    "CHOREO_FLEET_FILE": str(REPO / "devices" / "fleets" / "demo.toml"),
    "CHOREO_REACTORS_THRESHOLD_HIGH": "28",
    "CHOREO_REACTORS_THRESHOLD_HYSTERESIS": "1",
    "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "2",
    "CHOREO_REACTORS_DOOR_LIMIT_SECONDS": "5",
    "CHOREO_REACTORS_AVAILABILITY_SILENCE_SECONDS": "10",
    "CHOREO_REACTORS_ENERGY_PERIOD_SECONDS": "10",
}
READY_TIMEOUT = 30.0
COLOURS = {"alert.raised.v1": "\033[1;31m", "alert.raised.v2": "\033[1;31m",
           "alert.cleared.v1": "\033[32m", "event.rejected.v1": "\033[33m",
           "actuation.requested.v1": "\033[36m", "actuator.changed.v1": "\033[1;36m"}


class Demo:
    def __init__(self, state_dir: Path, duration: float | None) -> None:
        self.state_dir = state_dir
        self.duration = duration
        self.settings = load_settings({**os.environ, **DEMO_SETTINGS})
        self.device_ids = [spec.id for spec in load_fleet(self.settings).devices()]
        self.consumers = consumer_commands(self.settings)  # validates every reactor's settings before servers start
        self.processes: dict[str, subprocess.Popen] = {}
        self.seen: Counter[str] = Counter()
        self.announced = AnnouncedSchemas()
        self.colour = sys.stdout.isatty()

    def run(self) -> int:
        for server in ("mosquitto", "influxdb", "state", "ingest"):  # a fresh history each run; credentials kept
            shutil.rmtree(self.state_dir / server, ignore_errors=True)
        declared = declarations(self.settings)
        with LocalStack(self.state_dir, load_fleet(self.settings).accounts(), declared) as stack:
            env_file = stack.write_env_file("monitor")
            print(f"broker on 127.0.0.1: services {stack.broker.port}, devices {stack.broker.device_port} "
                  f"(TLS {stack.broker.tls_port}, CA {stack.broker.tls['ca.crt']}); InfluxDB on {stack.influxdb.url}")
            print(f"in another terminal: . {env_file} && choreo history --subject {self.device_ids[0]}")
            for service in (d for d in declared if d.kind == "external"):  # they start themselves
                print(f"service {service.name} ({service.label}): its settings are in "
                      f"{stack.write_env_file(service.name)}")
            try:
                asyncio.run(self._watch(stack))
            finally:
                self._stop_services()
            stored = self._stored_counts(stack)
        return self._summary(stored)

    async def _watch(self, stack: LocalStack) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        config = ClientConfig(client_id="demo-monitor", port=stack.broker.port, username="monitor",
                              password=stack.credentials.mqtt["monitor"], clean_start=True, session_expiry=0)
        async with MqttTransport(config) as monitor:
            await monitor.subscribe("choreo/services/+", SCHEMAS_FILTER, "events/#", qos=0)
            for name, command in self.consumers:
                self._start(name, command, stack.env(name))
                await self._wait_online(monitor, name)
            await self._start_console(monitor, stack)
            self._start("devices", ["devices"], stack.env("devices"))
            deadline = time.monotonic() + self.duration if self.duration else None
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                delivery = await monitor.receive(timeout=0.2)
                if delivery is not None:
                    self._take(delivery.message)
                self._check_children()

    def _start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log_file:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *command],
                env={**os.environ, **DEMO_SETTINGS, "CHOREO_REACTORS_STATE_DIR": str(self.state_dir / "state"), **env},
                stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the services in order
            )

    async def _wait_online(self, monitor: MqttTransport, name: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_children()
            delivery = await monitor.receive(timeout=0.2)
            if delivery is None:
                continue
            message = delivery.message
            if message.topic == f"choreo/services/{name}" and Manifest.parse(message.payload).online:
                print(f"service {name} online")
                return
            self._take(message)
        raise ChoreoError(f"{name} did not come online within {READY_TIMEOUT:.0f}s; "
                          f"see {self.state_dir}/logs/{name}.log")

    async def _start_console(self, monitor: MqttTransport, stack: LocalStack) -> None:
        """The web console, read-only as the monitor; its address once it answers."""
        [port] = free_ports(1)
        self._start("console", ["console", "--port", str(port)], stack.env("monitor"))
        address = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + READY_TIMEOUT
        while not await asyncio.to_thread(_answers, address + "api/map"):
            self._check_children()
            if time.monotonic() > deadline:
                raise ChoreoError(f"the console did not answer within {READY_TIMEOUT:.0f}s; "
                                  f"see {self.state_dir}/logs/console.log")
            delivery = await monitor.receive(timeout=0.2)
            if delivery is not None:
                self._take(delivery.message)
        print(f"console: {address}", flush=True)

    def _check_children(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ChoreoError(f"{name} exited with code {process.returncode}; see {self.state_dir}/logs/{name}.log")

    def _take(self, message: Message) -> None:
        """Show a fact; learn an announced schema, so that facts of types from outside show too."""
        if message.topic.startswith("events/"):
            self._show(message.topic, message.payload)
        elif message.topic.startswith("choreo/schemas/"):
            try:
                self.announced.offer(message)
            except InvalidInput as exc:
                print(f"({exc.message})")

    def _show(self, topic: str, payload: bytes) -> None:
        try:
            event = decode_event(payload, topic=topic, announced=self.announced)
        except InvalidInput as exc:
            print(f"(undecodable event on {topic}: {exc.message})")
            return
        self.seen[event.type] += 1
        line = f"{event.time:%H:%M:%S.%f}"[:-3] + f"  {event.type:<22} {event.subject:<20} "
        line += summarize(event.type, event.data.model_dump(mode="json"))
        if self.colour and event.type in COLOURS:
            line = f"{COLOURS[event.type]}{line}\033[0m"
        print(line, flush=True)

    def _stop_services(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan the services
        print("stopping: devices first, the sink last ...", flush=True)
        for name in ("devices", "console", *reversed([name for name, _ in self.consumers])):  # the sink last
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _stored_counts(self, stack: LocalStack) -> dict[str, int]:
        query = f'SELECT COUNT("id") FROM "{EVENTS}", "{READINGS}" WHERE time > now() - 1d GROUP BY "type"'
        try:
            series = InfluxV1(load_settings(stack.env("monitor")).influx).query(query)
        except ChoreoError as exc:
            print(f"could not count stored events: {exc.message}")
            return {}
        counts: dict[str, int] = {}
        for one in series:  # a type may be in both measurements
            counts[one["tags"]["type"]] = counts.get(one["tags"]["type"], 0) + one["values"][0][1]
        return counts

    def _summary(self, stored: dict[str, int]) -> int:
        print("\nseen live:   " + ", ".join(f"{t} {n}" for t, n in sorted(self.seen.items())))
        print("in InfluxDB: " + ", ".join(f"{t} {n}" for t, n in sorted(stored.items())))
        if self.seen["reading.v1"] and self.seen["alert.raised.v1"]:
            return EXIT_OK
        print("the demo saw no reading or no alert: check the logs in", self.state_dir / "logs")
        return EXIT_FAILED


def consumer_commands(settings: Settings) -> list[tuple[str, list[str]]]:
    """The consumers in start order, each with its `choreo` command: the sink, the actuation bridge (before
    the reactors that request actuation), every installed reactor, ingest."""
    reactors = start_order(build_reactors(settings))
    return [("sink", ["sink"]), ("bridge", ["bridge"]), *((name, ["reactor", name]) for name in reactors),
            ("ingest", ["ingest"])]


def start_order(reactors: list[Reactor]) -> list[str]:
    """Reactor names, each before the reactors whose facts it consumes (so that none of them is
    published before its consumer subscribed); by name otherwise, and in a cycle."""
    pending = sorted(reactors, key=lambda reactor: reactor.name)
    order: list[str] = []
    while pending:
        ready = [producer for producer in pending if not any(
            consumer is not producer and set(consumer.consumes) & producer.emits for consumer in pending)]
        first = (ready or pending)[0]
        order.append(first.name)
        pending.remove(first)
    return order


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def run_demo(state_dir: str, duration: float | None) -> int:
    try:
        return Demo(Path(state_dir).resolve(), duration).run()
    except ChoreoError as exc:
        print(f"choreo demo: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
