"""Mosquitto and InfluxDB as child processes, for `choreo demo`, the tests and the benchmarks.

Each server gets the project's own configuration, a state folder and free loopback
ports, and is stopped with the stack. Nothing here is used in production.
"""
from __future__ import annotations

import base64
import getpass
import json
import logging
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

from .acl import STATIC_ACL, write_acl
from .certificates import make_tls_files
from .credentials import Credentials, write_private
from .declarations import Declaration, declarations
from .errors import ConfigError
from .settings import load_settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
MOSQUITTO_DIR = REPO / "mosquitto"
INFLUXDB_TEMPLATE = REPO / "influxdb" / "influxdb.conf"
DATABASE = "choreo"
WRITER = "choreo"  # the sink: WRITE on the database
READER = "reader"  # history and dashboards: READ on the database
START_TIMEOUT = 30.0


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while choosing, so none is picked twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def answers(url: str, status: int) -> bool:
    """Whether an HTTP server answers `url` with `status` right now (a readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return response.status == status
    except OSError:
        return False


def start_on_free_ports(server: Broker | InfluxDB | VictoriaMetrics, attempts: int = 3) -> None:
    """Start a server; if another process took its port first, try again on new ones."""
    for attempt in range(1, attempts + 1):
        try:
            server.start()
            return
        except RuntimeError:
            if attempt == attempts:
                raise
            log.warning("%s could not start (a port was taken?); trying other ports", type(server).__name__)
            server.pick_ports()


def find_binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ConfigError(f"{name} is not installed; run `make setup` (Debian: apt-get install {name})")
    return path


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {process.returncode}")
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


class Broker:
    """A Mosquitto child process with the shipped conf.d/ and an ACL on loopback: a listener for the
    services, and one for devices, plain and TLS, where the client id is the username.

    `acl` is the ACL file; by default its static part alone (operators and devices, no service).
    LocalStack gives it the ACL generated for the declared services."""

    def __init__(self, state_dir: Path, credentials: Credentials, device_ids: Iterable[str], extra_config: str = "",
                 acl: Path = STATIC_ACL) -> None:
        self.state_dir = state_dir
        self.credentials = credentials
        self.device_ids = list(device_ids)
        self.extra_config = extra_config  # appended after the shipped settings (benchmarks size queues here)
        self.acl = acl  # read at every start: a test changes it and restarts the broker
        self.pick_ports()
        self.process: subprocess.Popen | None = None
        self.log_path = state_dir / "mosquitto.log"

    def pick_ports(self) -> None:
        self.port, self.device_port, self.tls_port = free_ports(3)

    def write_config(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        services, devices = self.state_dir / "passwd-services", self.state_dir / "passwd-devices"
        write_private(services, self.credentials.service_password_file())
        write_private(devices, self.credentials.device_password_file(self.device_ids))
        self.tls = make_tls_files(self.state_dir / "tls")
        every_listener = f"allow_anonymous false\nacl_file {self.acl}\n"  # per_listener_settings
        device_listener = f"{every_listener}password_file {devices}\nuse_username_as_clientid true\n"
        config = self.state_dir / "mosquitto.conf"
        config.write_text(
            "per_listener_settings true\n"
            f"user {getpass.getuser()}\n"
            f"persistence_location {self.state_dir}/\n"
            f"listener {self.port} 127.0.0.1\n{every_listener}password_file {services}\n"
            f"listener {self.device_port} 127.0.0.1\n{device_listener}"
            f"listener {self.tls_port} 127.0.0.1\n{device_listener}"
            f"cafile {self.tls['ca.crt']}\n"
            f"certfile {self.tls['server.crt']}\n"
            f"keyfile {self.tls['server.key']}\n"
            f"tls_version tlsv1.2\n"
            f"include_dir {MOSQUITTO_DIR / 'conf.d'}\n"
            f"{self.extra_config}\n"
        )
        return config

    def start(self) -> None:
        config = self.write_config()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [find_binary("mosquitto"), "-c", str(config)], stdout=log_file, stderr=subprocess.STDOUT
            )
        wait_until(self._accepts_connections, START_TIMEOUT, f"mosquitto on port {self.port}", self.process)

    def _accepts_connections(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)
        self.process = None


class InfluxDB:
    """An influxd 1.x child process with authentication on, a database and a writer account."""

    def __init__(self, state_dir: Path, credentials: Credentials) -> None:
        self.state_dir = state_dir
        self.credentials = credentials
        self.pick_ports()
        self.process: subprocess.Popen | None = None
        self.log_path = state_dir / "influxd.log"

    def pick_ports(self) -> None:
        self.port, self.rpc_port = free_ports(2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "influxdb.conf"
        config.write_text(
            INFLUXDB_TEMPLATE.read_text().format(state_dir=self.state_dir, http_port=self.port, rpc_port=self.rpc_port)
        )
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [find_binary("influxd"), "-config", str(config)], stdout=log_file, stderr=subprocess.STDOUT
            )
        wait_until(self._pings, START_TIMEOUT, f"influxd on port {self.port}", self.process)
        self._bootstrap()

    def _pings(self) -> bool:
        return answers(f"{self.url}/ping", 204)

    def _bootstrap(self) -> None:
        admin = self.credentials.influx_admin_password
        writer = self.credentials.influx_writer_password
        reader = self.credentials.influx_reader_password
        users = self.query("SHOW USERS", auth=("admin", admin), allow_error=True)
        if "error" in users:  # no users yet: the first admin may be created without credentials
            self.query(f"CREATE USER admin WITH PASSWORD '{admin}' WITH ALL PRIVILEGES", auth=None)
        self.query(f"CREATE DATABASE {DATABASE}", auth=("admin", admin))
        for user, password, privilege in ((WRITER, writer, "WRITE"), (READER, reader, "READ")):
            if f'"{user}"' not in json.dumps(users):
                self.query(f"CREATE USER {user} WITH PASSWORD '{password}'", auth=("admin", admin))
            self.query(f"GRANT {privilege} ON {DATABASE} TO {user}", auth=("admin", admin))

    def query(self, statement: str, auth: tuple[str, str] | None, allow_error: bool = False) -> dict:
        """A plain /query POST (used for bootstrap and as an independent check in tests)."""
        request = urllib.request.Request(f"{self.url}/query", data=urllib.parse.urlencode({"q": statement}).encode())
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            if allow_error:
                return body
            raise RuntimeError(f"influxd refused {statement.split()[0]}: {body.get('error', exc)}") from None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)
        self.process = None


class VictoriaMetrics:
    """A victoria-metrics child process: a real server for the InfluxDB v2 write protocol."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pick_ports()
        self.process: subprocess.Popen | None = None
        self.log_path = state_dir / "victoria-metrics.log"

    def pick_ports(self) -> None:
        [self.port] = free_ports(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [find_binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{self.port}",
                 f"-storageDataPath={self.state_dir / 'data'}", "-retentionPeriod=100y", "-loggerLevel=ERROR"],
                stdout=log_file, stderr=subprocess.STDOUT)
        wait_until(self._healthy, START_TIMEOUT, f"victoria-metrics on port {self.port}", self.process)

    def _healthy(self) -> bool:
        return answers(f"{self.url}/health", 200)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.process, sig)
        self.process = None


def _stop(process: subprocess.Popen | None, sig: int) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LocalStack:
    """A broker and a database for one local run, with the environment each service needs.

    The broker has an account for `admin`, `monitor` and each declared service (default: the
    declarations of the settings in the environment and choreo.toml), and the ACL generated
    from those declarations, written to `mosquitto/acl` in the state folder.
    """

    def __init__(self, state_dir: Path, device_ids: Iterable[str] = (),
                 declared: Sequence[Declaration] | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.declared = list(declarations(load_settings()) if declared is None else declared)
        self.credentials = Credentials.load_or_create(self.state_dir / "credentials.json",
                                                      [declaration.name for declaration in self.declared])
        acl = write_acl(self.state_dir / "mosquitto" / "acl", self.declared)
        self.broker = Broker(self.state_dir / "mosquitto", self.credentials, device_ids, acl=acl)
        self.influxdb = InfluxDB(self.state_dir / "influxdb", self.credentials)

    def __enter__(self) -> LocalStack:
        try:
            start_on_free_ports(self.broker)
            start_on_free_ports(self.influxdb)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.broker.stop()
        self.influxdb.stop()

    def env(self, account: str) -> dict[str, str]:
        """CHOREO_* variables for a process that connects as `account` (a service or 'devices').

        Only the sink gets InfluxDB write access and only the monitor read access.
        """
        port = self.broker.device_port if account == "devices" else self.broker.port
        env = {"CHOREO_MQTT_HOST": "127.0.0.1", "CHOREO_MQTT_PORT": str(port)}
        influx = {"sink": (WRITER, self.credentials.influx_writer_password),
                  "monitor": (READER, self.credentials.influx_reader_password)}.get(account)
        if influx is not None:
            env.update({
                "CHOREO_INFLUX_URL": self.influxdb.url,
                "CHOREO_INFLUX_DATABASE": DATABASE,
                "CHOREO_INFLUX_USERNAME": influx[0],
                "CHOREO_INFLUX_PASSWORD": influx[1],
            })
        if account == "ingest":  # its kept documents, with the stack's other state
            env["CHOREO_INGEST_STATE_DIR"] = str(self.state_dir / "ingest")
        if account == "devices":
            env["CHOREO_DEVICES_SECRET"] = self.credentials.fleet_secret
        else:
            env["CHOREO_MQTT_USERNAME"] = account
            env["CHOREO_MQTT_PASSWORD"] = self.credentials.mqtt[account]
        return env

    def write_env_file(self, account: str = "monitor") -> Path:
        """A shell file with the settings of `account`: `env` for the monitor (`choreo history` in another
        terminal), `env.NAME` for a service that starts itself, such as one declared in a services file."""
        path = self.state_dir / ("env" if account == "monitor" else f"env.{account}")
        write_private(path, "".join(f"export {name}='{value}'\n" for name, value in self.env(account).items()))
        return path
