"""Joining from outside, as docs/join.md tells it: a reactor package the gateway's code does not
mention, installed with pip into a virtualenv next to the project, and a service in plain shell
declared in a services file. Both run under `choreo demo` with their own generated accounts; their
new fact types are stored, and shown by `choreo history`, `choreo trace`, `choreo map` and
`choreo asyncapi` (checked by the official parser). What reached InfluxDB is checked over plain HTTP.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.declarations import Declaration, declarations
from gateway.localstack import LocalStack
from gateway.service import EXIT_FAILED
from gateway.settings import load_settings
from tests.conftest import TEST_DEVICES
from tests.helpers import influx_query, wait_for
from tests.test_asyncapi import validate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FROST = REPO / "examples" / "frost-watch"
SHOUT = REPO / "examples" / "shout"


@pytest.fixture(scope="module")
def outside_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv next to the project's, which sees the gateway and its dependencies (a .pth file adds
    the project's site-packages), with the frost-watch package installed into it by pip."""
    venv = tmp_path_factory.mktemp("outside") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    project = sysconfig.get_path("purelib")
    (Path(site_packages) / "choreo-project.pth").write_text(f"import site; site.addsitedir({project!r})\n")
    package = shutil.copytree(FROST, venv.parent / FROST.name)  # pip builds in the folder: not in the repo
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(package)], check=True, timeout=300)
    return python


def choreo(python: Path, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run([python, "-m", "gateway.cli", *args], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_gateway_does_not_know_the_plugin():
    assert "frost" not in {d.name for d in declarations(load_settings({}))}
    assert not [p for p in (REPO / "gateway").rglob("*.py") if "frost" in p.read_text()]


class Demo:
    """`choreo demo` as a process, its output collected line by line."""

    def __init__(self, python: Path, state_dir: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [python, "-m", "gateway.cli", "demo", "--duration", "180", "--state-dir", str(state_dir)],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, pattern: str) -> re.Match[str] | None:
        return next((m for line in self.lines if (m := re.search(pattern, line))), None)

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return "\n".join(self.lines)


def read_env_file(path: str) -> dict[str, str]:
    """The variables of a shell file of `export NAME='value'` lines."""
    pairs = [shlex.split(line.removeprefix("export "))[0] for line in Path(path).read_text().splitlines()]
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.fixture
def demo(outside_python: Path, tmp_path: Path) -> Iterator[Demo]:
    env = {"CHOREO_REACTORS_FROST_LIMIT": "26", "CHOREO_SERVICES_FILE": str(SHOUT / "services.toml")}
    running = Demo(outside_python, tmp_path / "demo", env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def test_a_plugin_and_a_shell_service_join_the_demo(outside_python, demo, tmp_path):
    settings = wait_for(lambda: demo.said(r"service shout \(declared in .*\): its settings are in (\S+)"), 60,
                        "the demo to hand out shout's settings:\n" + "\n".join(demo.lines))
    with open(tmp_path / "shout.log", "wb") as log:
        shout = subprocess.Popen(["sh", str(SHOUT / "shout.sh")], env={**os.environ, **read_env_file(settings[1])},
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        monitor = read_env_file(str(tmp_path / "demo" / "env"))
        influx = (monitor["CHOREO_INFLUX_URL"], monitor["CHOREO_INFLUX_USERNAME"], monitor["CHOREO_INFLUX_PASSWORD"])

        def stored(event_type: str) -> list[dict]:
            return influx_query(*influx, f"SELECT * FROM events WHERE \"type\" = '{event_type}'")

        wait_for(lambda: stored("frost.warned.v1"), 90, "a frost warning in InfluxDB")
        wait_for(lambda: stored("alert.shouted.v1"), 120, f"a shouted alert in InfluxDB ({tmp_path / 'shout.log'})")
        frost, shouted = stored("frost.warned.v1")[0], stored("alert.shouted.v1")[0]
        assert json.loads(frost["data"])["limit"] == 26 and frost["source"] == "reactor/frost"
        assert shouted["source"] == "service/shout" and json.loads(shouted["data"])["shout"].endswith("!!!")

        history = json.loads(choreo(outside_python, "history", "--type", "frost.warned.v1", "--format", "json",
                                    env=monitor))
        assert history and {row["type"] for row in history} == {"frost.warned.v1"}
        shout_trace = choreo(outside_python, "trace", shouted["correlationid"], env=monitor)
        assert "alert.raised.v1" in shout_trace and "alert.shouted.v1" in shout_trace
        frost_trace = choreo(outside_python, "trace", frost["correlationid"], env=monitor)
        assert "reading.v1" in frost_trace and "frost.warned.v1" in frost_trace
        chart = choreo(outside_python, "map", env=monitor)
        assert "frost.warned.v1" in chart and "alert.shouted.v1" in chart
        assert "frost" in chart and "shout" in chart
        document = json.loads(choreo(outside_python, "asyncapi", "--broker", env=monitor))
        assert {"frost.warned.v1", "alert.shouted.v1"} <= set(document["channels"])
        checked = validate(document, tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        os.killpg(shout.pid, signal.SIGTERM)
        shout.wait(timeout=10)
    output = demo.stop()
    acl = (tmp_path / "demo" / "mosquitto" / "acl").read_text()
    assert "user frost\n" in acl and "user shout\n" in acl  # accounts generated from the declarations
    broker_log = (tmp_path / "demo" / "mosquitto" / "mosquitto.log").read_text()
    assert "u'frost'" in broker_log and "u'shout'" in broker_log  # each logged in with its own account
    assert "frost.warned.v1" in output  # the demo's live view shows the new type too


def test_a_plugin_without_its_acl_stops_naming_what_the_broker_refused(outside_python, tmp_path):
    """The account exists, but the broker's ACL was generated before the plugin was installed."""
    declared = [*declarations(load_settings({})), Declaration("frost", "", ("reading.v1",), ())]
    with LocalStack(tmp_path / "stack", TEST_DEVICES, declared) as stack:
        result = subprocess.run([outside_python, "-m", "gateway.cli", "reactor", "frost"],
                                env={**os.environ, **stack.env("frost"),
                                     "CHOREO_REACTORS_STATE_DIR": str(tmp_path / "state")},
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_FAILED
    assert "refused the publish to choreo/schemas/frost.warned.v1/frost: not authorized (0x87)" in result.stderr
