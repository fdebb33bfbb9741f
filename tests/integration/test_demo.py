"""`make demo DURATION=…` as a user runs it: exits 0 after showing readings and an alert."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_bounded_demo_shows_readings_and_an_alert_and_exits_0(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--duration", "15", "--state-dir", str(tmp_path / "demo")],
        env={k: v for k, v in os.environ.items() if not k.startswith("CHOREO_")},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "reading.v1" in result.stdout and "alert.raised.v1" in result.stdout
    assert "in InfluxDB:" in result.stdout and "reading.v1" in result.stdout.split("in InfluxDB:")[1]
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True)
    assert leftover.stdout == "", "the demo left processes running"
