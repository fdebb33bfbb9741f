"""The v2 writer (influxdb-client, /api/v2/write) against a real server for that protocol: VictoriaMetrics."""
import json
import urllib.parse
import urllib.request
import uuid

import pytest

from gateway.errors import StoreError
from gateway.events import Measurement, ReadingV1, new_event
from gateway.localstack import VictoriaMetrics, start_on_free_ports
from gateway.settings import load_settings
from gateway.sink.schema import event_lines
from gateway.sink.writers import writer_for
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def victoria(tmp_path_factory):
    server = VictoriaMetrics(tmp_path_factory.mktemp("vm"))
    start_on_free_ports(server)
    yield server
    server.stop()


def export(url: str, series: str) -> list[dict]:
    query = urllib.parse.urlencode({"match[]": series})
    with urllib.request.urlopen(f"{url}/api/v1/export?{query}", timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line]


def v2_writer(url: str):
    return writer_for(load_settings({"CHOREO_INFLUX_API": "v2", "CHOREO_INFLUX_URL": url, "CHOREO_INFLUX_ORG": "choreo",
                                     "CHOREO_INFLUX_BUCKET": "choreo", "CHOREO_INFLUX_TOKEN": "unused-by-vm"}).influx)


def test_readings_written_through_v2_are_stored_with_their_tags(victoria):
    device = f"v2-{uuid.uuid4().hex[:6]}"
    events = [new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20.0 + n)],
                                  site="hq", room="lab"), source=f"device/{device}", subject=device) for n in range(5)]
    v2_writer(victoria.url).write([line for event in events for line in event_lines(event)])

    def stored():
        return export(victoria.url, f'readings_temperature{{device="{device}"}}')

    [series] = wait_for(stored, 30, "the points in VictoriaMetrics")
    labels = series["metric"]
    assert (labels["device"], labels["unit.temperature"], labels["site"], labels["room"]) == (
        device, "Cel", "hq", "lab")
    assert sorted(series["values"]) == [20.0, 21.0, 22.0, 23.0, 24.0]


def test_an_unreachable_v2_server_is_a_retryable_store_error():
    with pytest.raises(StoreError) as unreachable:
        v2_writer("http://127.0.0.1:9").write(["m f=1 1"])
    assert unreachable.value.retryable
