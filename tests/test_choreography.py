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


def schemas_with_a_conflict_and_a_refusal():
    from gateway.announced import AnnouncedSchemas
    from gateway.errors import InvalidInput
    from gateway.transport import Message

    schemas = AnnouncedSchemas()
    schemas.offer(Message("choreo/schemas/door.opened.v1/doorsvc", b'{"type": "object", "required": ["door"]}'))
    schemas.offer(Message("choreo/schemas/door.opened.v1/othersvc", b'{"type": "object"}'))
    schemas.offer(Message("choreo/schemas/reading.v1/ingest", b'{"type": "object"}'))
    try:
        schemas.offer(Message("choreo/schemas/x.v1/evil", b'{"$ref": "https://example.com/s.json"}'))
    except InvalidInput:
        pass
    return schemas


def test_announced_types_conflicts_and_refusals_are_reported():
    manifests = [*MANIFESTS, manifest("doorsvc", [], ["door.opened.v1"])]
    graph = Choreography.of(manifests, schemas_with_a_conflict_and_a_refusal())
    text = graph.text()
    assert "door.opened.v1           doorsvc -> climate (offline), sink" in text
    assert "known from announced schemas only: door.opened.v1, x.v1" not in text  # x.v1 was refused
    assert "known from announced schemas only: door.opened.v1\n" in text
    assert "schema conflict: door.opened.v1 announced with different schemas by doorsvc, othersvc" in text
    assert ("refused schema announcement on choreo/schemas/x.v1/evil: $ref 'https://example.com/s.json': "
            "only local references (#/...) are allowed") in text
    assert "style evt_door_opened_v1 fill:#fd8" in graph.mermaid()


async def test_collect_reads_the_retained_manifests_and_schema_announcements():
    from gateway.announced import AnnouncedSchemas
    from gateway.choreography import collect_manifests
    from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message

    broker = MemoryBroker()
    broker.route(Message("choreo/services/doorsvc", MANIFESTS[0].message().payload, retain=True))
    broker.route(Message("choreo/schemas/door.opened.v1/doorsvc", b'{"type": "object"}', retain=True))
    broker.route(Message("choreo/schemas/door.opened.v1/broken", b"{", retain=True))
    schemas = AnnouncedSchemas()
    async with MemoryTransport(broker, ClientConfig("map")) as transport:
        manifests = await collect_manifests(transport, quiet=0.2, schemas=schemas)
    assert [m.spec.name for m in manifests] == ["ingest"]
    assert schemas.types() == ["door.opened.v1"]
    assert list(schemas.refused) == ["choreo/schemas/door.opened.v1/broken"]


def versioned(name, consumes, emits, upcasts=None) -> Manifest:
    return Manifest.parse(json.dumps({"name": name, "status": "online", "consumes": consumes, "emits": emits,
                                      "upcasts": upcasts or {}}).encode())


def test_versions_on_the_edges_during_a_migration_window():
    graph = Choreography.of([
        versioned("threshold", ["reading.v1"], ["alert.raised.v1", "alert.raised.v2"]),
        versioned("climate", ["alert.raised.v2", "alert.raised.v1"], [], {"alert.raised.v1": "alert.raised.v2"}),
        versioned("shout", ["alert.raised.v1"], []),
    ])
    text = graph.text()
    assert "alert.raised.v1          threshold -> climate (as v2), shout" in text
    assert "alert.raised.v2          threshold -> climate" in text
    assert graph.unproduced() == ["reading.v1"] and not graph.unconsumed()  # ingest is not in this picture
    assert "evt_alert_raised_v1 -->|as v2| svc_climate" in graph.mermaid()


def test_a_version_left_behind_is_flagged_on_either_side():
    moved_on = Choreography.of([  # the producer emits only v2; shout still waits for v1; climate upcasts, fine
        versioned("threshold", ["reading.v1"], ["alert.raised.v2"]),
        versioned("climate", ["alert.raised.v2", "alert.raised.v1"], [], {"alert.raised.v1": "alert.raised.v2"}),
        versioned("shout", ["alert.raised.v1"], []),
    ])
    assert moved_on.unproduced() == ["alert.raised.v1", "reading.v1"]
    assert "consumed but produced by nobody: reading.v1, alert.raised.v1 (produced now: alert.raised.v2)" \
        in moved_on.text()
    only_upcasting = Choreography.of([
        versioned("threshold", ["reading.v1"], ["alert.raised.v2"]),
        versioned("climate", ["alert.raised.v2", "alert.raised.v1"], [], {"alert.raised.v1": "alert.raised.v2"}),
    ])
    assert "alert.raised.v1" not in only_upcasting.unproduced()  # climate is served by v2: nobody waits
    still_old = Choreography.of([  # every consumer handles v2, the producer still emits v1 too
        versioned("threshold", ["reading.v1"], ["alert.raised.v1", "alert.raised.v2"]),
        versioned("climate", ["alert.raised.v2"], []),
    ])
    assert "produced but consumed by nobody: alert.raised.v1 (consumers have moved to alert.raised.v2)" \
        in still_old.text()
