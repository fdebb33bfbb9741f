"""One device floods the broker as fast as `mosquitto_pub -l` goes (QoS 0, then QoS 1) while a demo-sized
fleet runs: the others' readings are all stored, their alerts arrive in time, the flood is shed, counted and said.

Ingest, the threshold reactor and the sink run as their own processes on a real Mosquitto and InfluxDB.
Probe devices publish a reading every 0.2 s, every other one above the alert limit, so each of their
hot readings raises an alert; an independent C subscriber (`mosquitto_sub`) stamps each alert as it
arrives, and reading -> alert p99 during each flood is compared with 3x the quiet phase of the same test
(taken as at least 200 ms, and at QoS 0, which has no flow control, at least 1 s: see the floors below).
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, datetime

import pytest

from gateway.credentials import device_password
from gateway.fleet import Fleet
from gateway.localstack import LocalStack
from tests.helpers import MqttObserver, influx_query, wait_for

pytestmark = pytest.mark.integration

# Demo-sized: as many sensors and actuators as `make demo` runs, all speaking the simulator's JSON.
FLEET = """
interval = 1.0
day_length = 60
[[sites]]
id = "hq"
  [[sites.rooms]]
  id = "lab"
  devices = [{ kind = "temperature", count = 2, base = 25, swing = 5 }, { kind = "co2" }, { kind = "fan" }]
  [[sites.rooms]]
  id = "office"
  devices = [{ kind = "temperature" }, { kind = "motion" }, { kind = "door" }, { kind = "heater" }]
[[sites]]
id = "depot"
  [[sites.rooms]]
  id = "store"
  devices = [{ kind = "temperature", count = 2 }, { kind = "power" }, { kind = "valve" }]
"""
FLOOD = "flood-1"
PROBES = [f"probe-{n}" for n in range(1, 17)]
PROBE_INTERVAL = 0.2  # each probe's seconds between readings: 80 readings/s, 40 alerts/s for all of them
ALERTS_PER_PHASE = 300
# The flood runs under SCHED_IDLE, only on CPU the gateway leaves idle: a device elsewhere takes none
# of the gateway's CPU. With the same share as the gateway's processes (or nice 19, which still gets a
# share), it outran ingest on a loaded 2-core machine and the backlog stood in the socket buffers.
IDLE_PRIORITY = ["chrt", "--idle", "0"]
# The quiet p99 the flood's is compared with (3x) is taken as at least this: on a loaded 2-core machine a
# process now and then waits a few hundred milliseconds for a core, flood or not (quiet phases' p99 went
# from 3 to 365 ms between runs), and 3x of a 5 ms p99 is shorter than one such wait.
LATENCY_FLOOR = 0.200
# A QoS 0 flood has no flow control: the others wait behind it in the socket buffers in front of ingest
# for as long as ingest, sharing the CPU with the broker forwarding the flood, takes to drain them
# (docs/flow-control.md, "The broker's part"); up to about a second was seen on a loaded machine.
# Without admission they waited 14 to 18 s, or for minutes.
QOS0_LATENCY_FLOOR = 1.0
SETTINGS = {
    "CHOREO_REACTORS_THRESHOLD_MIN_DURATION": "0",
    "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2",
    "CHOREO_INGEST_THROTTLE_REPORT_SECONDS": "1",
}


class Probes(threading.Thread):
    """The probe devices' telemetry at a steady pace from one connection; every other reading is hot."""

    def __init__(self, port: int, password: str) -> None:
        super().__init__(daemon=True)
        self.client = MqttObserver(port, "admin", password, client_id="flood-test-probes")
        self.published = dict.fromkeys(PROBES, 0)
        self.stopping = threading.Event()

    def run(self) -> None:
        started, step = time.monotonic(), 0
        while not self.stopping.is_set():
            tick, probe = divmod(step, len(PROBES))  # one probe at a time, spread over the interval
            timestamp = datetime.now(UTC).isoformat(timespec="microseconds")
            value = 35.0 if tick % 2 else 20.0
            payload = f'{{"seq":{tick + 1},"ts":"{timestamp}","temperature":{value}}}'.encode()
            self.client.client.publish(f"devices/{PROBES[probe]}/telemetry", payload, qos=1)
            self.published[PROBES[probe]] += 1
            step += 1
            # pacing a load generator, not waiting for a result
            self.stopping.wait(max(0.0, started + step * PROBE_INTERVAL / len(PROBES) - time.monotonic()))

    def __enter__(self) -> Probes:
        self.client.__enter__()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.join()
        self.client.__exit__()


class AlertClock:
    """`mosquitto_sub` stamps each alert about a probe as it arrives: latency = arrival - reading time."""

    def __init__(self, stack: LocalStack) -> None:
        self.command = ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(stack.broker.port),
                        "-u", "admin", "-P", stack.credentials.mqtt["admin"], "-i", "flood-test-clock", "-q", "0",
                        "-t", "events/alert.raised.v1/+", "-F", "%U %p", "-d"]
        self.alerts: list[tuple[float, float]] = []  # (reading time, latency)
        self.subscribed = threading.Event()

    def _read(self) -> None:
        for line in self.process.stdout:
            if "received SUBACK" in line:
                self.subscribed.set()
            arrived, _, payload = line.partition(" ")
            if payload.startswith("{"):
                alert = json.loads(payload)
                if alert["subject"] in PROBES:
                    reading = datetime.fromisoformat(alert["time"].replace("Z", "+00:00")).timestamp()
                    self.alerts.append((reading, float(arrived) - reading))

    def since(self, moment: float) -> list[float]:
        return [latency for reading, latency in list(self.alerts) if reading >= moment]

    def __enter__(self) -> AlertClock:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        assert self.subscribed.wait(10), "mosquitto_sub did not subscribe"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def flood(stack: LocalStack, qos: int) -> list[subprocess.Popen]:
    """`mosquitto_pub -l` from the flooding device's own account, fed valid telemetry without end."""
    lines = subprocess.Popen([*IDLE_PRIORITY, "yes", '{"seq":1,"temperature":21.5}'], stdout=subprocess.PIPE)
    publisher = subprocess.Popen(
        [*IDLE_PRIORITY, "mosquitto_pub", "-h", "127.0.0.1", "-p", str(stack.broker.device_port),
         "-u", FLOOD, "-i", FLOOD, "-P", device_password(stack.credentials.fleet_secret, FLOOD),
         "-t", f"devices/{FLOOD}/telemetry", "-q", str(qos), "-l"], stdin=lines.stdout, stderr=subprocess.DEVNULL)
    lines.stdout.close()  # mosquitto_pub holds the pipe now
    return [publisher, lines]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)


def phase(clock: AlertClock, what: str) -> float:
    """The p99 of ALERTS_PER_PHASE probe alerts whose readings were sent from now on."""
    start = time.time()
    wait_for(lambda: len(clock.since(start)) >= ALERTS_PER_PHASE, 40, f"{ALERTS_PER_PHASE} probe alerts {what}")
    return p99(clock.since(start)[:ALERTS_PER_PHASE])


def counters(observer: MqttObserver) -> dict:
    reports = observer.on("choreo/services/ingest/counters")
    return json.loads(reports[-1].payload)["counters"] if reports else {}


def shed(observer: MqttObserver) -> int:
    """The flooding device's messages shed so far, as ingest's latest counter report says."""
    return counters(observer).get(f"shed:{FLOOD}", 0)


def test_a_flooding_device_is_shed_while_the_others_readings_and_alerts_arrive_in_time(tmp_path, services):
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(FLEET)
    fleet = [spec.id for spec in Fleet.load(fleet_file).devices()]
    with LocalStack(tmp_path / "stack", [*fleet, FLOOD]) as stack:
        def query(statement: str) -> list[dict]:
            return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)

        settings = {**SETTINGS, "CHOREO_FLEET_FILE": str(fleet_file), "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool"),
                    "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")}
        with MqttObserver(stack.broker.port, "monitor", stack.credentials.mqtt["monitor"],
                          client_id="flood-test-observer") as observer:
            observer.subscribe("choreo/services/#", qos=0)
            for name, command in (("sink", ["sink"]), ("threshold", ["reactor", "threshold"]), ("ingest", ["ingest"])):
                services.start(name, command, {**stack.env(name), **settings})
                wait_for(lambda name=name: any(m["status"] == "online" for m in observer.manifests(name)), 30,
                         f"{name} online (log: {services.log_dir / (name + '.log')})")
            services.start("devices", ["devices"], {**stack.env("devices"), **settings})

            with AlertClock(stack) as clock, Probes(stack.broker.port, stack.credentials.mqtt["admin"]) as probes:
                quiet = phase(clock, "without a flood")
                flooded = {}
                for qos in (0, 1):
                    before = shed(observer)
                    flooding = flood(stack, qos)
                    try:
                        wait_for(lambda before=before: shed(observer) > before + 10_000, 30,
                                 f"ingest shedding the QoS {qos} flood")
                        flooded[qos] = phase(clock, f"during the QoS {qos} flood")
                    finally:
                        stop(flooding)
                shed_total = shed(observer)
            print(f"reading -> alert p99: quiet {quiet * 1000:.1f} ms, QoS 0 flood {flooded[0] * 1000:.1f} ms, "
                  f"QoS 1 flood {flooded[1] * 1000:.1f} ms; shed {shed_total}")

            # The others' alerts all arrived during each flood (each phase waited for them), and in time.
            for qos, floor in ((0, QOS0_LATENCY_FLOOR), (1, LATENCY_FLOOR)):
                assert flooded[qos] <= 3 * max(quiet, floor), \
                    f"QoS {qos}: p99 {flooded[qos] * 1000:.1f} ms, quiet {quiet * 1000:.1f} ms"

            # The flood is said: started, and ended once it stopped; stored like any fact.
            def throttled(phase: str) -> list[dict]:
                return [row for row in query(f"SELECT * FROM events WHERE type = 'device.throttled.v1' "
                                             f"AND subject = '{FLOOD}'") if json.loads(row["data"])["phase"] == phase]

            [started, *_] = wait_for(lambda: throttled("started"), 30, "a stored device.throttled.v1, started")
            assert json.loads(started["data"])["rate"] == 5.0  # a device the fleet does not describe
            wait_for(lambda: throttled("ended"), 30, "a stored device.throttled.v1, ended")

            # Every probe reading is stored ...
            for probe, published in probes.published.items():
                wait_for(lambda probe=probe, published=published: query(
                    f"SELECT count(id) FROM readings WHERE device = '{probe}'") == [{"time": 0, "count": published}],
                    30, f"all {published} readings of {probe} stored")
            # ... and so is every reading of the fleet's sensors, without a gap.
            for device in fleet:
                sequences = [row["sequence"] for row in query(
                    f"SELECT sequence FROM readings WHERE device = '{device}'")]
                if sequences:
                    assert sorted(sequences) == list(range(min(sequences), max(sequences) + 1)), device
            stored = [device for device in fleet if query(f"SELECT id FROM readings WHERE device = '{device}' LIMIT 1")]
            assert len(stored) >= 8, stored  # the fleet's sensors
