"""docker-compose.yml cannot run here (no Docker engine): it is kept correct by reading it (with the
reactors.yml it includes, which `choreo secrets` generates), and what `choreo secrets` writes runs its
broker config on a real Mosquitto (paths and ports made local)."""
from __future__ import annotations

import getpass
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml

from gateway.cli import build_parser
from gateway.compose import COMPOSE_DIR, COMPOSE_FLEET, REACTORS_FILE, write_compose_secrets
from gateway.credentials import device_password
from gateway.declarations import Declaration, declarations
from gateway.errors import ConfigError
from gateway.fleet import Fleet
from gateway.localstack import find_binary, free_ports, wait_until
from gateway.plugins import reactor_names
from gateway.settings import load_settings
from tests.helpers import MqttObserver, wait_for
from tests.test_declarations import services_file

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
BROKER_CONFIG = (REPO / "mosquitto" / "mosquitto.conf").read_text()
SERVICES_PORT, TLS_PORT, PLAIN_DEVICES_PORT = 1883, 8883, 1884  # the compose broker's listeners
# What `choreo secrets` declares: the compose fleet's settings, no services file.
DECLARED = declarations(load_settings({"CHOREO_FLEET_FILE": str(COMPOSE_FLEET)}))


def compose_services(secrets: Path) -> dict[str, dict]:
    """docker-compose.yml's services with those of the reactors.yml it includes, as `choreo secrets` wrote it."""
    [include] = COMPOSE["include"]
    assert include == {"path": f"{COMPOSE_DIR}/{REACTORS_FILE}", "project_directory": "."}
    reactors = yaml.safe_load((secrets / REACTORS_FILE).read_text())["services"]
    assert not set(reactors) & set(COMPOSE["services"]), "an included service would conflict"
    return {**COMPOSE["services"], **reactors}


def local_paths(service: dict) -> list[str]:
    paths = [volume.split(":")[0] for volume in service.get("volumes", []) if volume.startswith("./")]
    return paths + list(service.get("env_file", []))


def listener(port: int) -> str:
    """The settings of one listener in the compose broker config."""
    return BROKER_CONFIG.split(f"\nlistener {port} ")[1].split("\nlistener ")[0]


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_every_referenced_file_exists_or_is_written_by_choreo_secrets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as `choreo secrets` runs: in the project's folder, writing into .choreo/compose
    generated = {path.name for path in write_compose_secrets(COMPOSE_DIR, ["temp-1"], DECLARED)}
    assert REACTORS_FILE in generated
    for name, service in compose_services(COMPOSE_DIR).items():
        for path in local_paths(service):
            relative = Path(path).relative_to(".")
            if relative.parts[:2] == COMPOSE_DIR.parts:
                assert relative.name in generated, f"{name}: {path} is not written by `choreo secrets`"
            else:
                assert (REPO / relative).exists(), f"{name}: {path} does not exist"
    assert (REPO / "Dockerfile").exists()


def test_the_broker_container_hands_each_secret_the_config_reads_to_the_mosquitto_user():
    """Mosquitto 2 drops root before reading its files, so the container copies them to its user first."""
    broker = COMPOSE["services"]["mosquitto"]
    script = broker["command"][-1]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in broker["volumes"]}
    for name in re.findall(r"/mosquitto/secrets/([\w.-]+)", BROKER_CONFIG):
        assert f"/run/choreo/{name}" in script, f"the broker container does not copy {name}"
        assert mounted[f"/run/choreo/{name}"] == f"./{COMPOSE_DIR / name}"
    assert "ca.key" not in str(broker), "the CA's key stays on the host"
    assert script.rstrip().splitlines()[-1] == "exec mosquitto -c /mosquitto/config/mosquitto.conf"


def test_every_service_command_is_a_real_choreo_command(tmp_path):
    write_compose_secrets(tmp_path, [], DECLARED)
    parser = build_parser()
    services = compose_services(tmp_path)
    commands = {name: s["command"] for name, s in services.items() if s.get("image", "").startswith("choreo")}
    assert set(commands) == {"sink", "ingest", "bridge", "devices", *reactor_names()}
    for command in commands.values():
        parser.parse_args(command)  # exits (fails the test) on an unknown command or option


def test_the_generated_reactors_yml_runs_every_installed_reactor_as_docker_compose_yml_runs_its_services(tmp_path):
    write_compose_secrets(tmp_path, [], DECLARED)
    reactors = yaml.safe_load((tmp_path / REACTORS_FILE).read_text())["services"]
    assert sorted(reactors) == reactor_names() == sorted(d.name for d in DECLARED if d.kind == "reactor")
    # The shape of the choreo services in docker-compose.yml (x-choreo), as the reactors had there before.
    assert COMPOSE["services"]["sink"] == {**COMPOSE["x-choreo"], "command": ["sink"],
                                           "env_file": [f"./{COMPOSE_DIR}/sink.env"]}
    for name, service in reactors.items():
        assert service == {**COMPOSE["x-choreo"], "command": ["reactor", name], "env_file": [f"{tmp_path}/{name}.env"]}
    relative = Path(os.path.relpath(tmp_path / "relative", Path.cwd()))
    write_compose_secrets(relative, [], DECLARED)  # as `choreo secrets` writes it by default: a relative folder
    assert yaml.safe_load((relative / REACTORS_FILE).read_text())["services"]["threshold"]["env_file"] == \
        [f"./{relative}/threshold.env"]


def test_a_declared_service_named_like_a_compose_service_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="'influxdb' .* is taken by docker-compose.yml's influxdb service"):
        write_compose_secrets(tmp_path, [], [*DECLARED, Declaration("influxdb", "", (), ())])


def test_servers_and_their_configuration():
    assert COMPOSE["services"]["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert COMPOSE["services"]["influxdb"]["image"] == "influxdb:2.7"
    for line in ("per_listener_settings true", "include_dir /mosquitto/config/conf.d"):
        assert line in BROKER_CONFIG
    assert "password_file /mosquitto/secrets/passwd-services" in listener(SERVICES_PORT)
    for port in (SERVICES_PORT, TLS_PORT, PLAIN_DEVICES_PORT):  # the ACL choreo secrets generates
        assert "allow_anonymous false" in listener(port) and "acl_file /mosquitto/secrets/acl" in listener(port)
    for port in (TLS_PORT, PLAIN_DEVICES_PORT):
        for line in ("password_file /mosquitto/secrets/passwd-devices", "use_username_as_clientid true"):
            assert line in listener(port), (port, line)
    for line in ("cafile /mosquitto/secrets/ca.crt", "certfile /mosquitto/secrets/server.crt",
                 "keyfile /mosquitto/secrets/server.key"):
        assert line in listener(TLS_PORT)
    assert "certfile" not in listener(PLAIN_DEVICES_PORT) and "certfile" not in listener(SERVICES_PORT)
    ports = COMPOSE["services"]["mosquitto"]["ports"]
    assert f"{TLS_PORT}:{TLS_PORT}" in ports
    assert f"127.0.0.1:{PLAIN_DEVICES_PORT}:{PLAIN_DEVICES_PORT}" in ports, "plain devices: the Docker host only"
    assert "127.0.0.1:1883:1883" in ports, "services' plain MQTT: the Docker host only"


def test_the_compose_devices_connect_over_tls_and_run_the_fleet_choreo_secrets_knows():
    devices = COMPOSE["services"]["devices"]
    env = devices["environment"]
    assert env["CHOREO_MQTT_PORT"] == str(TLS_PORT)
    assert env["CHOREO_MQTT_HOST"] == "mosquitto"
    assert f"./{COMPOSE_DIR / 'ca.crt'}:{env['CHOREO_MQTT_TLS_CA']}:ro" in devices["volumes"]
    # The image's WORKDIR is /app, with the repo's devices/ copied into it.
    assert env["CHOREO_FLEET_FILE"] == f"/app/{COMPOSE_FLEET.relative_to(REPO)}"


def test_influxdb_is_initialised_with_org_bucket_and_token(tmp_path):
    write_compose_secrets(tmp_path, [], DECLARED)
    env = read_env(tmp_path / "influxdb.env")
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ORG"] and env["DOCKER_INFLUXDB_INIT_BUCKET"] == "choreo"
    sink_env = read_env(tmp_path / "sink.env")
    assert sink_env["CHOREO_INFLUX_TOKEN"] == env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    for service in ("ingest", "threshold", "climate", "devices"):
        assert "CHOREO_INFLUX" not in (tmp_path / f"{service}.env").read_text(), f"{service} needs no InfluxDB access"


def test_no_anonymous_access_in_any_shipped_broker_config():
    for path in (REPO / "mosquitto").rglob("*"):
        if path.is_file():
            for line in path.read_text().splitlines():
                assert not line.strip().startswith("allow_anonymous true"), path


# `choreo secrets` as a process ------------------------------------------------------------------------------------


def choreo_secrets(*args: str, cwd: Path | None = None,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("CHOREO_")}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "secrets", *args], cwd=cwd,
                          env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def accounts(passwd: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in passwd.read_text().splitlines()]


def secret_values(folder: Path) -> list[str]:
    """Every secret `choreo secrets` keeps in `folder`: passwords, tokens, key material."""
    stored = json.loads((folder / "credentials.json").read_text())
    values = [*stored["mqtt"].values(), *(value for name, value in stored.items() if name != "mqtt")]
    values.append((folder / "influx-token").read_text())
    for key in folder.glob("*.key"):
        values += [line for line in key.read_text().splitlines() if not line.startswith("-----")]
    return [value for value in values if value]


def test_choreo_secrets_gives_broker_accounts_to_exactly_the_devices_of_the_compose_fleet(tmp_path):
    result = choreo_secrets("--out", str(tmp_path / "default"))
    assert result.returncode == 0, result.stderr
    assert accounts(tmp_path / "default" / "passwd-devices") == Fleet.load(COMPOSE_FLEET).accounts()
    fleet = tmp_path / "fleet.toml"
    fleet.write_text('[[sites]]\nid = "s"\n[[sites.rooms]]\nid = "attic"\ndevices = [{ kind = "fan", count = 2 }]\n')
    assert choreo_secrets("--out", str(tmp_path / "other"), "--fleet", str(fleet)).returncode == 0
    assert accounts(tmp_path / "other" / "passwd-devices") == ["attic-fan-1", "attic-fan-2"]


def test_choreo_secrets_prints_only_paths_and_writes_only_into_the_git_ignored_choreo_folder(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / ".gitignore", checkout)
    git = ["git", "-c", "core.excludesFile=/dev/null", "-C", str(checkout)]
    subprocess.run([*git, "init", "-q"], check=True)
    first = choreo_secrets(cwd=checkout)  # the default folder
    assert first.returncode == 0, first.stderr
    folder = checkout / COMPOSE_DIR
    kept = {name: (folder / name).read_bytes() for name in ("credentials.json", "influx-token", "ca.crt", "ca.key")}
    second = choreo_secrets(cwd=checkout)
    assert second.returncode == 0, second.stderr

    secrets = secret_values(folder)
    assert len(secrets) > len(DECLARED) + 4  # passwords (admin, monitor, the services), fleet secret, token, key
    for result in (first, second):
        assert result.stderr == ""
        lines = result.stdout.splitlines()
        assert lines and all(re.fullmatch(rf"wrote {re.escape(str(COMPOSE_DIR))}/[\w.-]+", line) for line in lines)
        assert all((checkout / line.removeprefix("wrote ")).is_file() for line in lines)
        for secret in secrets:
            assert secret not in result.stdout
    untracked = subprocess.run([*git, "status", "--porcelain", "--untracked-files=all"], capture_output=True,
                               text=True, check=True).stdout.splitlines()
    assert untracked == ["?? .gitignore"]  # everything choreo secrets wrote is ignored
    written = [p.relative_to(checkout) for p in checkout.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert all(path.parts[0] == ".choreo" for path in written if path.name != ".gitignore"), written
    assert {"acl", REACTORS_FILE} <= {path.name for path in folder.iterdir()}
    for path in folder.iterdir():  # what holds no secret is readable by the broker's own user
        mode = stat.S_IMODE(path.stat().st_mode)
        public = path.suffix == ".crt" or path.name in ("acl", REACTORS_FILE)
        assert mode == (0o644 if public else 0o600), (path.name, oct(mode))
    # A second run keeps what devices and InfluxDB already hold: credentials, token, and the CA devices trust.
    assert {name: (folder / name).read_bytes() for name in kept} == kept


# The compose broker on a real Mosquitto ---------------------------------------------------------------------------


@contextmanager
def compose_broker(tmp_path: Path, secrets: Path, config: str = BROKER_CONFIG) -> Iterator[dict[int, int]]:
    """The compose broker config on a real Mosquitto, paths and ports made local; yields compose -> local port."""
    compose_ports = [int(port) for port in re.findall(r"^listener (\d+) 0\.0\.0\.0$", config, re.MULTILINE)]
    ports = dict(zip(compose_ports, free_ports(len(compose_ports)), strict=True))
    replacements = [("/mosquitto/secrets", secrets), ("/mosquitto/config/conf.d", REPO / "mosquitto" / "conf.d"),
                    ("/mosquitto/data", tmp_path)]
    replacements += [(f"listener {port} 0.0.0.0", f"listener {local} 127.0.0.1") for port, local in ports.items()]
    for compose_path, local in replacements:
        config = config.replace(compose_path, str(local))
    (tmp_path / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n{config}")
    with running(tmp_path / "mosquitto.conf", ports.values(), tmp_path / "mosquitto.log"):
        yield ports


@contextmanager
def running(config: Path, ports, log_path: Path, command: list[str] | None = None) -> Iterator[None]:
    with open(log_path, "ab") as log_file:
        broker = subprocess.Popen(command or [find_binary("mosquitto"), "-c", str(config)],
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: all(accepts(port) for port in ports), 10, "the compose broker", broker)
        yield
    finally:
        broker.terminate()
        broker.wait(10)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def client(port: int, username: str | None, password: str | None = None, ca: Path | None = None) -> paho.Client:
    """A paho-mqtt client; with `ca`, over TLS, verifying the broker against that CA and its host name."""
    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:6]}",
                       protocol=paho.MQTTv5)
    if ca is not None:
        mqtt.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
    if username is not None:
        mqtt.username_pw_set(username, password)
    return mqtt


def login(port: int, username: str | None, password: str | None = None, ca: Path | None = None) -> paho.ReasonCode:
    """The broker's answer to one CONNECT (None: anonymous)."""
    mqtt = client(port, username, password, ca)
    answers: list[paho.ReasonCode] = []
    mqtt.on_connect = lambda c, u, flags, reason, props: answers.append(reason)
    mqtt.connect("127.0.0.1", port)

    def answered() -> bool:  # the network loop in this thread: a threaded one takes a second to notice a refusal
        mqtt.loop(timeout=0.05)
        return bool(answers)

    try:
        wait_for(answered, 10, "the broker's answer", interval=0)
    finally:
        mqtt.disconnect()
    return answers[0]


def write_grants(acl: str, account: str) -> set[str]:
    """The topic filters `account` may publish to under the shipped ACL (user lines, and patterns for everyone)."""
    grants, user = set(), None
    for line in acl.splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:1] in (["topic"], ["pattern"]) and words[1] in ("write", "readwrite"):
            if words[0] == "pattern":
                grants.add(words[2].replace("%u", account).replace("%c", account))
            elif user == account:
                grants.add(words[2])
    return grants


def probe_topics(acl: str, device_ids: list[str]) -> list[str]:
    """A concrete topic for every write grant of the ACL, for every account it names and for two devices."""
    filters = set(re.findall(r"^topic (?:write|readwrite) (\S+)$", acl, re.MULTILINE))
    for pattern in re.findall(r"^pattern (?:write|readwrite) (\S+)$", acl, re.MULTILINE):
        filters |= {pattern.replace("%u", device).replace("%c", device) for device in device_ids}
    return sorted({f.replace("+", device_ids[0]).replace("#", "probe") for f in filters})


def declared_writes(declaration: Declaration, device_id: str) -> set[str]:
    """What a service may publish by its declaration, spelled as the probes are: its types' topics, its
    manifest (and a partition's, below it), its types' schema announcements, the other topics it writes
    (the bridge: its devices' native commands)."""
    name, emits = declaration.name, declaration.emits
    return ({f"events/{event_type}/{device_id}" for event_type in emits}
            | {f"choreo/services/{name}", f"choreo/services/{name}/probe"}
            | {f"choreo/schemas/{event_type}/{name}" for event_type in emits} | set(declaration.writes))


@pytest.mark.integration
def test_what_choreo_secrets_writes_runs_the_compose_broker_and_each_account_publishes_exactly_what_the_acl_allows(
        tmp_path):
    secrets, services_toml = tmp_path / "secrets", services_file(tmp_path)  # and a service in any language
    result = choreo_secrets("--out", str(secrets), env={"CHOREO_SERVICES_FILE": str(services_toml)})
    assert result.returncode == 0, result.stderr
    declared = {d.name: d for d in declarations(load_settings({"CHOREO_FLEET_FILE": str(COMPOSE_FLEET),
                                                                "CHOREO_SERVICES_FILE": str(services_toml)}))}
    assert "shout" in declared and set(DECLARED) < set(declared.values())
    services = {env["CHOREO_MQTT_USERNAME"]: env["CHOREO_MQTT_PASSWORD"]
                for env in map(read_env, secrets.glob("*.env")) if "CHOREO_MQTT_USERNAME" in env}
    services["admin"] = json.loads((secrets / "credentials.json").read_text())["mqtt"]["admin"]  # in no env file
    assert sorted(services) == sorted(accounts(secrets / "passwd-services")), "every account of the password file"
    assert sorted(services) == sorted(["admin", "monitor", *declared]), "an account for each declared service"
    devices = accounts(secrets / "passwd-devices")
    fleet_secret = read_env(secrets / "devices.env")["CHOREO_DEVICES_SECRET"]
    device = (devices[0], device_password(fleet_secret, devices[0]))
    acl = (secrets / "acl").read_text()  # what the compose broker reads, generated
    # the Zigbee2MQTT bridge's account has a block of its own among the device lines (docs/devices.md)
    assert re.findall(r"^user (\S+)$", acl, re.MULTILINE) == ["admin", "monitor", "zigbee2mqtt", *sorted(declared)]
    probes = sorted({*probe_topics(acl, devices[:2]),
                     *(topic for d in declared.values() for topic in declared_writes(d, devices[0]))})

    with compose_broker(tmp_path, secrets) as port, \
            MqttObserver(port[SERVICES_PORT], "admin", services["admin"], "compose-watch") as watcher, \
            MqttObserver(port[SERVICES_PORT], "admin", services["admin"], "compose-sentinel") as sentinel:
        watcher.subscribe("#")
        on_listener = {name: (port[SERVICES_PORT], None) for name in services}
        on_listener[device[0]] = (port[TLS_PORT], secrets / "ca.crt")  # a device over TLS, verifying the broker
        passwords = {**services, device[0]: device[1]}
        for name, (listener_port, ca) in on_listener.items():
            publisher = client(listener_port, name, passwords[name], ca)
            publisher.connect("127.0.0.1", listener_port)
            publisher.loop_start()
            try:
                sent = [publisher.publish(topic, f"{name} {topic}".encode(), qos=1) for topic in probes]
                for info in sent:
                    info.wait_for_publish(10)
                    assert info.is_published(), f"{name}: no PUBACK"
            finally:
                publisher.disconnect()
                publisher.loop_stop()
            # Each PUBACK came after the broker had queued the message for the watcher, if it was allowed;
            # so once this later message arrives, everything allowed has arrived before it.
            mark = f"test/sentinel/{name}"
            sentinel.publish(mark, b"")
            wait_for(lambda mark=mark: watcher.on(mark), 10, f"the sentinel after {name}")
            arrived = {m.topic for m in watcher.messages if m.payload.startswith(f"{name} ".encode())}
            grants = write_grants(acl, name)
            allowed = {topic for topic in probes if any(paho.topic_matches_sub(g, topic) for g in grants)}
            assert arrived == allowed, name
            if name == "monitor":
                assert allowed == set()  # read-only
            elif name == device[0]:  # its own topics in each convention's layout, no one else's
                own = {f.replace("%u", name).replace("+", name).replace("#", "probe")
                       for f in re.findall(r"^pattern (?:write|readwrite) (\S+)$", acl, re.MULTILINE)}
                assert allowed == own and {f"devices/{name}/telemetry", f"devices/{name}/status"} < allowed
            elif name != "admin":
                assert allowed and allowed < set(probes) and not any(t.startswith("devices/") for t in allowed), name
                assert arrived == declared_writes(declared[name], devices[0]), f"{name}: not what it declares"


@pytest.mark.integration
def test_each_compose_listener_takes_only_its_own_accounts_and_8883_proves_its_names(tmp_path):
    secrets = tmp_path / "secrets"
    assert choreo_secrets("--out", str(secrets)).returncode == 0
    service = ("sink", read_env(secrets / "sink.env")["CHOREO_MQTT_PASSWORD"])
    device_id = accounts(secrets / "passwd-devices")[0]
    device = (device_id, device_password(read_env(secrets / "devices.env")["CHOREO_DEVICES_SECRET"], device_id))
    ca = secrets / "ca.crt"
    with compose_broker(tmp_path, secrets) as port:
        assert set(port) == {SERVICES_PORT, TLS_PORT, PLAIN_DEVICES_PORT}
        assert not login(port[SERVICES_PORT], *service).is_failure
        assert not login(port[TLS_PORT], *device, ca=ca).is_failure
        assert not login(port[PLAIN_DEVICES_PORT], *device).is_failure
        refused = [(SERVICES_PORT, device, None), (TLS_PORT, service, ca), (PLAIN_DEVICES_PORT, service, None),
                   (TLS_PORT, (device_id, "wrong"), ca), *((p, (None,), ca if p == TLS_PORT else None) for p in port)]
        for compose_port, account, tls in refused:
            assert login(port[compose_port], *account, ca=tls).is_failure, (compose_port, account[0])
        # Devices in compose reach the broker as `mosquitto`; from the Docker host as localhost or 127.0.0.1.
        for name in ("mosquitto", "localhost", "127.0.0.1", "other.example"):
            context = ssl.create_default_context(cafile=str(ca))
            context.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13 verifies by default
            with socket.create_connection(("127.0.0.1", port[TLS_PORT]), timeout=5) as raw:
                if name == "other.example":
                    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
                        context.wrap_socket(raw, server_hostname=name)
                else:
                    context.wrap_socket(raw, server_hostname=name).close()


@pytest.mark.integration
def test_the_compose_devices_service_logs_in_over_tls_with_every_device_of_its_fleet(tmp_path, services):
    """`choreo devices` with the compose service's environment (host, port and CA path made local)."""
    secrets = tmp_path / "secrets"
    assert choreo_secrets("--out", str(secrets)).returncode == 0
    specs = Fleet.load(COMPOSE_FLEET).devices()
    native = {spec.id for spec in specs if spec.profile == "native"}
    # Each convention's birth, as its documentation gives it (docs/fleet.md), for the other devices.
    births = {"tasmota": lambda name: (f"tele/{name}/LWT", b"Online"),
              "shelly": lambda name: (f"{name}/online", b"true"),
              "homie": lambda name: (f"homie/5/{name}/$state", b"ready"),
              "zigbee2mqtt": lambda name: ("zigbee2mqtt/bridge/state", b'{"state":"online"}')}
    expected_births = {births[spec.profile](spec.native) for spec in specs if spec.profile != "native"}
    assert native and {topic.split("/")[0] for topic, _ in expected_births} >= {"tele", "homie", "zigbee2mqtt"}
    admin = json.loads((secrets / "credentials.json").read_text())["mqtt"]["admin"]
    compose_env = COMPOSE["services"]["devices"]["environment"]
    with compose_broker(tmp_path, secrets) as port, \
            MqttObserver(port[SERVICES_PORT], "admin", admin, "compose-devices-watch") as watcher:
        watcher.subscribe("#")
        env = {**compose_env, **read_env(secrets / "devices.env"), "CHOREO_MQTT_HOST": "127.0.0.1",
               "CHOREO_MQTT_PORT": str(port[int(compose_env["CHOREO_MQTT_PORT"])]),
               "CHOREO_MQTT_TLS_CA": str(secrets / "ca.crt"), "CHOREO_FLEET_FILE": str(COMPOSE_FLEET)}
        services.start("devices", ["devices"], env)

        def online() -> set[str]:
            return {m.topic.split("/")[1] for m in watcher.on("devices/") if m.payload == b"online"}

        wait_for(lambda: online() == native, 20, "every native device of the fleet online")
        wait_for(lambda: expected_births <= {(m.topic, m.payload) for m in watcher.messages}, 20,
                 "every profile device's birth in its convention")


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("install") is None, reason="needs root, as the container has")
def test_the_compose_broker_container_reads_owner_only_secrets_after_dropping_root(tmp_path):
    """Run the broker container's start script (paths made local) as root: Mosquitto drops to its own user before it
    reads the password files and the key, so without the script's copy it could not read them."""
    try:
        broker_user = pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no mosquitto user to drop to")
    # Folders the dropped user can enter (pytest's tmp_path is root's only), as a checkout's .choreo/compose is.
    base = Path(tempfile.mkdtemp(prefix="compose-broker-"))
    try:
        base.chmod(0o755)
        secrets = base / "host"
        assert choreo_secrets("--out", str(secrets)).returncode == 0  # owner-only files of another user: root
        shutil.copytree(REPO / "mosquitto", base / "config")
        (base / "data").mkdir()
        os.chown(base / "data", broker_user.pw_uid, broker_user.pw_gid)
        service_port, tls_port, plain_port = free_ports(3)
        config = BROKER_CONFIG
        for compose, local in (("/mosquitto/config/conf.d", base / "config" / "conf.d"),
                               ("/mosquitto/data", base / "data"), ("/mosquitto/secrets", base / "secrets"),
                               (f"listener {SERVICES_PORT} 0.0.0.0", f"listener {service_port} 127.0.0.1"),
                               (f"listener {TLS_PORT} 0.0.0.0", f"listener {tls_port} 127.0.0.1"),
                               (f"listener {PLAIN_DEVICES_PORT} 0.0.0.0", f"listener {plain_port} 127.0.0.1")):
            config = config.replace(compose, str(local))
        (base / "mosquitto.conf").write_text(config)  # no `user` line: Mosquitto drops to `mosquitto`
        script = COMPOSE["services"]["mosquitto"]["command"][-1]
        script = script.replace("/run/choreo", str(secrets)).replace("/mosquitto/secrets", str(base / "secrets"))
        script = script.replace("exec mosquitto -c /mosquitto/config/mosquitto.conf",
                                f"exec {find_binary('mosquitto')} -c {base / 'mosquitto.conf'}")
        ca = secrets / "ca.crt"
        device_id = accounts(secrets / "passwd-devices")[0]
        device = (device_id, device_password(read_env(secrets / "devices.env")["CHOREO_DEVICES_SECRET"], device_id))
        with running(base / "mosquitto.conf", (service_port, tls_port, plain_port), tmp_path / "mosquitto.log",
                     ["sh", "-ec", script]):
            assert not login(service_port, "sink", read_env(secrets / "sink.env")["CHOREO_MQTT_PASSWORD"]).is_failure
            assert not login(tls_port, *device, ca=ca).is_failure
        # The control: the same broker reading the owner-only files where choreo secrets left them does not start.
        (base / "direct.conf").write_text(config.replace(str(base / "secrets"), str(secrets)))
        direct = subprocess.run([find_binary("mosquitto"), "-c", str(base / "direct.conf")], capture_output=True,
                                text=True, timeout=10)
        assert direct.returncode != 0 and "Unable to open" in direct.stdout + direct.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
