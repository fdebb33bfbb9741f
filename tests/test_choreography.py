import json

from gateway.choreography import Choreography
from gateway.manifest import Manifest


def manifest(name, consumes, emits, status="online") -> Manifest:
    return Manifest.parse(json.dumps({"name": name, "status": status, "consumes": consumes, "emits": emits}).encode())


MANIFESTS = [
    manifest("ingest", [], ["reading.v1", "event.rejected.v1"]),
    manifest("threshold", ["reading.v1"], ["alert.raised.v1", "event.rejected.v1"]),
    manifest("climate", ["alert.raised.v1", "door.opened.v1"], ["actuation.requested.v1"], status="offline"),
    manifest("sink", ["*"], ["event.rejected.v1"]),
]


def test_producers_consumers_and_loose_ends():
    graph = Choreography.of(MANIFESTS)
    assert graph.producers["reading.v1"] == ["ingest"] and graph.consumers["reading.v1"] == ["threshold"]
    assert graph.unproduced() == ["door.opened.v1"]
    assert graph.unconsumed() == ["actuation.requested.v1", "event.rejected.v1"]
    text = graph.text()
    assert "reading.v1               ingest -> threshold, sink" in text
    assert "consumed but produced by nobody: door.opened.v1" in text
    assert "produced but consumed by nobody (only stored by sink): actuation.requested.v1, event.rejected.v1" in text
    assert "offline: climate" in text


def test_mermaid_flowchart():
    chart = Choreography.of(MANIFESTS).mermaid()
    assert chart.startswith("flowchart LR")
    assert "svc_ingest --> evt_reading_v1" in chart and "evt_reading_v1 --> svc_threshold" in chart
    assert 'svc_climate["climate (offline)"]' in chart
    assert "style evt_door_opened_v1 stroke:#d33" in chart
