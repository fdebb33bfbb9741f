"""Node-RED doing the gateway's job, the peer in the side-by-side benchmark.

The flow is bench/nodered/flows.json (see ../shared/PEERS.md for why it is built so):
- ingest: `devices/+/telemetry` (QoS 1) -> json -> one point per metric in `readings`
  (tags device, metric, unit; field value) -> join (1,000 points or 1 s) -> `influxdb batch`;
- reaction, on its own broker connections: the same telemetry -> temperature above
  `alert_above` -> `{"device", "seq", "ts", "metric", "value", "above"}` (QoS 1) on
  `bench/nodered/alerts/{device}`, one alert per reading above.

    with NodeRed.for_stack(stack) as nodered:   # ready: both paths answered a probe reading
        ... /proc/{nodered.pid}/stat ...

`.venv/bin/python bench/nodered.py --check` runs it against a LocalStack of its own.
Node-RED and its nodes come from bench/nodered/package-lock.json (`npm ci` on first use).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procstat import cpu_seconds  # noqa: E402
from gateway.credentials import write_private  # noqa: E402
from gateway.localstack import DATABASE, LocalStack, find_binary, wait_until  # noqa: E402
from tests.helpers import MqttObserver, influx_query  # noqa: E402

HERE = Path(__file__).resolve().parent / "nodered"
RED_JS = HERE / "node_modules" / "node-red" / "red.js"
ALERTS = "bench/nodered/alerts/"
PROBE_DEVICE = "nodered-probe"  # its readings are dropped from InfluxDB once Node-RED is ready

# Headless: no editor, no admin API, no HTTP server at all.
SETTINGS = """module.exports = {{
    flowFile: {flow_file},
    credentialSecret: false,
    readOnly: true,
    httpAdminRoot: false,
    httpNodeRoot: false,
    uiHost: "127.0.0.1",
    diagnostics: {{enabled: false, ui: false}},
    externalModules: {{autoInstall: false, palette: {{allowInstall: false}}}},
    logging: {{console: {{level: "info", metrics: false, audit: false}}}},
}};
"""


def install() -> None:
    if not RED_JS.exists():
        subprocess.run([find_binary("npm"), "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"], check=True)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class NodeRed:
    def __init__(self, mqtt_port: int, mqtt_username: str, mqtt_password: str,
                 influx_url: str, influx_username: str, influx_password: str,
                 database: str = DATABASE, alert_above: float = 28.0, timeout: float = 60.0) -> None:
        """A broker on loopback. The InfluxDB account must be able to read and drop series (the probe's); admin can."""
        self.mqtt = (mqtt_port, mqtt_username, mqtt_password)
        self.influx = (influx_url, influx_username, influx_password, database)
        self.alert_above = alert_above
        self.timeout = timeout
        self.process: subprocess.Popen | None = None

    @classmethod
    def for_stack(cls, stack: LocalStack, **options) -> NodeRed:
        """Node-RED on a LocalStack's broker and database, as their admin."""
        return cls(stack.broker.port, "admin", stack.credentials.mqtt["admin"],
                   stack.influxdb.url, "admin", stack.credentials.influx_admin_password, **options)

    @property
    def pid(self) -> int:
        assert self.process is not None, "Node-RED is not running"
        return self.process.pid

    def __enter__(self) -> NodeRed:
        install()
        self._dir = tempfile.TemporaryDirectory(prefix="nodered-")
        user_dir = Path(self._dir.name)
        self.log_path = user_dir / "node-red.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [find_binary("node"), str(RED_JS), "--userDir", str(user_dir),
                 "--settings", str(user_dir / "settings.js")],
                env=self._configure(user_dir), stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except Exception as exc:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"Node-RED did not start: {exc}; its log ends:\n{tail}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self, user_dir: Path) -> dict[str, str]:
        """Write the user directory; return the environment the flow reads its settings from."""
        port, username, password = self.mqtt
        url, influx_user, influx_password, database = self.influx
        influx = urllib.parse.urlsplit(url)
        assert influx.scheme == "http", f"the flow speaks plain HTTP to InfluxDB, not {url}"
        (user_dir / "package.json").write_text('{"name": "nodered-bench", "private": true}\n')  # read at start
        (user_dir / "settings.js").write_text(SETTINGS.format(flow_file=json.dumps(str(HERE / "flows.json"))))
        broker = {"user": username, "password": password}  # keyed by the config nodes' ids in flows.json
        write_private(user_dir / "flows_cred.json", json.dumps({
            "broker-ingest": broker, "broker-reaction": broker, "broker-alerts": broker,
            "influxdb-choreo": {"username": influx_user, "password": influx_password}}))
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(user_dir), "NODE_ENV": "production",
                "MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(port), "INFLUX_HOST": influx.hostname,
                "INFLUX_PORT": str(influx.port or 80), "INFLUX_DATABASE": database,
                "ALERT_ABOVE": str(self.alert_above)}

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Node-RED stops its flows and disconnects
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._dir.cleanup()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _query(self, statement: str) -> list[dict]:
        url, user, password, database = self.influx
        return influx_query(url, user, password, statement, database)

    def _wait_ready(self) -> None:
        """Probe readings, one at a time, until one comes back both as an alert and as a stored point.

        Every earlier probe was then either handled or sent before a subscription existed
        (each connection delivers in order), so dropping the probe's series leaves the database clean.
        """
        port, username, password = self.mqtt
        deadline = time.monotonic() + self.timeout
        with MqttObserver(port, username, password, client_id="nodered-probe") as observer:
            observer.subscribe(ALERTS + PROBE_DEVICE)
            seq = 1
            while not self._probe(observer, seq, timeout=min(1.5, deadline - time.monotonic())):  # join holds 1 s
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"not ready after {self.timeout:.0f}s")
                seq += 1
        self._query(f"DROP SERIES FROM readings WHERE device = '{PROBE_DEVICE}'")

    def _probe(self, observer: MqttObserver, seq: int, timeout: float) -> bool:
        now = datetime.now(UTC)
        observer.publish(f"devices/{PROBE_DEVICE}/telemetry",
                         json.dumps({"seq": seq, "ts": rfc3339(now), "temperature": self.alert_above + 100}).encode())
        point_time = (int(now.timestamp()) * 1000 + now.microsecond // 1000) * 1_000_000 + seq  # as the flow sets it

        def answered() -> bool:
            return (any(json.loads(m.payload)["seq"] == seq for m in observer.on(ALERTS)) and bool(
                self._query(f"SELECT value FROM readings WHERE device = '{PROBE_DEVICE}' AND time = {point_time}")))
        try:
            wait_until(answered, timeout, "Node-RED", self.process)
            return True
        except TimeoutError:
            return False


def check(messages: int, devices: int = 50, timeout: float = 120.0) -> bool:
    """Publish `messages` readings (temperature and humidity) and see them all stored and every alert raised."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    readings = []
    for n in range(messages):
        reading = {"seq": n // devices + 1, "ts": rfc3339(start + timedelta(milliseconds=n)),
                   "temperature": 20.0 + n % 10, "humidity": 40.0}
        readings.append((f"check-{n % devices}", reading))
    expected_alerts = {(device, r["seq"]) for device, r in readings if r["temperature"] > 28.0}
    with tempfile.TemporaryDirectory() as state, LocalStack(Path(state)) as stack:
        admin = stack.credentials.mqtt["admin"]
        started = time.monotonic()
        with NodeRed.for_stack(stack, alert_above=28.0) as nodered, \
                MqttObserver(stack.broker.port, "admin", admin, client_id="nodered-check") as observer:
            print(f"Node-RED ready in {time.monotonic() - started:.1f}s (pid {nodered.pid})")
            observer.subscribe(ALERTS + "#")
            started = time.monotonic()
            observer.publish_all([(f"devices/{device}/telemetry", json.dumps(r).encode()) for device, r in readings])

            def counts() -> tuple[int, set]:
                rows = influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password,
                                    "SELECT COUNT(value) FROM readings")
                alerts = {(a["device"], a["seq"]) for a in map(json.loads, (m.payload for m in observer.on(ALERTS)))}
                return (rows[0]["count"] if rows else 0), alerts

            deadline = time.monotonic() + timeout
            while (result := counts()) != (2 * messages, expected_alerts) and time.monotonic() < deadline:
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            stored, alerts = result
            cpu = cpu_seconds(nodered.pid)
            print(f"published {messages:,} readings ({2 * messages:,} points) on devices/+/telemetry, QoS 1")
            print(f"stored in InfluxDB: {stored:,} points, expected {2 * messages:,}")
            print(f"alerts received: {len(alerts):,}, expected {len(expected_alerts):,}"
                  f"{'' if alerts == expected_alerts else ' (not the same readings)'}")
            print(f"done after {elapsed:.1f}s; Node-RED CPU so far {cpu:.1f}s")
    return result == (2 * messages, expected_alerts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="run Node-RED on a LocalStack of its own and verify the flow")
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    if not args.check:
        parser.error("nothing to do: use --check (the benchmark uses the NodeRed class)")
    sys.exit(0 if check(args.messages) else 1)


if __name__ == "__main__":
    main()
