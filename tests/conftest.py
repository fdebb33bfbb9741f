"""Shared fixtures: a real Mosquitto and InfluxDB started by the suite on free loopback ports."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.localstack import LocalStack

TEST_DEVICES = ["lab-temperature-1", "lab-temperature-2", "lab-fan-1", "dev-a", "dev-b", "bad-1"]
TEST_FLEET = """
seed = 3
interval = 0.2
day_length = 8
[[sites]]
id = "hq"
[[sites.rooms]]
id = "lab"
devices = [{ kind = "temperature", count = 2, base = 25, swing = 5 }, { kind = "fan" }]
"""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-seconds", type=float, default=45.0,
                     help="length of the soak in tests/integration/test_soak.py (issue 6 asks for 600)")
    parser.addoption("--console-screenshots", metavar="DIR",
                     help="where tests/integration/test_console_browser.py saves its screenshots (default: a "
                          "temporary folder; docs/console refreshes the documentation's)")


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    """A small fleet whose lab warms past 28 Cel within seconds; its device ids are in TEST_DEVICES."""
    path = tmp_path / "fleet.toml"
    path.write_text(TEST_FLEET)
    return path


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("stack"), TEST_DEVICES) as running:
        yield running


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A stack of its own, for tests that stop or restart a server."""
    with LocalStack(tmp_path / "stack", TEST_DEVICES) as running:
        yield running


class ServiceProcesses:
    """`choreo` commands as OS processes, as in production; all are stopped at the end of the test."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log_file = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", *command],
            env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
        )
        log_file.close()
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceProcesses]:
    processes = ServiceProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()
