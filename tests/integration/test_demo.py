"""`make demo DURATION=…` as a user runs it: exits 0 after showing readings and an alert, and serves the
console at the address it prints while it runs."""
import json
import os
import re
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def test_bounded_demo_shows_readings_and_an_alert_serves_the_console_and_exits_0(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--duration", "20", "--state-dir", str(tmp_path / "demo")],
        env={k: v for k, v in os.environ.items() if not k.startswith("CHOREO_")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        address = wait_for(lambda: next((m[1] for line in lines if (m := re.fullmatch(
            r"console: (http://127\.0\.0\.1:\d+/)\n", line))), None), 180, "the console's address")
        with urllib.request.urlopen(address + "api/map", timeout=10) as answer:
            services = {service["name"] for service in json.load(answer)["services"]}
        assert {"sink", "ingest", "threshold", "climate"} <= services
        with urllib.request.urlopen(address, timeout=10) as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        assert demo.wait(timeout=120) == 0, "".join(lines)[-3000:]
    finally:
        if demo.poll() is None:
            demo.kill()
    reader.join(timeout=10)
    output = "".join(lines)
    assert "reading.v1" in output and "alert.raised.v1" in output
    assert "in InfluxDB:" in output and "reading.v1" in output.split("in InfluxDB:")[1]
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "demo")], capture_output=True, text=True)
    assert leftover.stdout == "", "the demo left processes running"
