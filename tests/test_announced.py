"""Announced schemas (gateway/announced.py): what is accepted, what is refused and why, conflicts, memory."""
from __future__ import annotations

import json
import logging

import pytest

from gateway.announced import MAX_SCHEMA_BYTES, AnnouncedSchemas, parse_schema, schema_announcements
from gateway.errors import InvalidInput
from gateway.events import BUILT_IN_TYPES, ReadingV1
from gateway.topics import SCHEMAS_FILTER, matches
from gateway.transport import Message

HAPPENED = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "where": {"$ref": "#/$defs/Place"},
        "site": {"type": "string"},
    },
    "required": ["count"],
    "additionalProperties": False,
    "$defs": {"Place": {"type": "object", "properties": {"room": {"type": "string", "pattern": "^[a-z]+$"}}}},
}
LOOSE = {"type": "object"}


def announcement(schema: object, event_type: str = "x.happened.v1", service: str = "somesvc") -> Message:
    payload = schema if isinstance(schema, bytes) else json.dumps(schema).encode()
    return Message(f"choreo/schemas/{event_type}/{service}", payload, retain=True)


def refusal(schema: object, topic_type: str = "x.happened.v1") -> str:
    schemas = AnnouncedSchemas()
    with pytest.raises(InvalidInput) as raised:
        schemas.offer(announcement(schema, topic_type))
    assert schemas.types() == [] and schemas.counts["schemas_refused"] == 1
    assert list(schemas.refused) == [f"choreo/schemas/{topic_type}/somesvc"]
    return raised.value.message


def test_a_valid_schema_makes_its_type_known_and_validates_data():
    schemas = AnnouncedSchemas()
    schemas.offer(announcement(HAPPENED))
    assert "x.happened.v1" in schemas and schemas.types() == ["x.happened.v1"]
    schemas.check("x.happened.v1", "service/somesvc", {"count": 3, "where": {"room": "lab"}})
    with pytest.raises(InvalidInput, match=r"^data\.where\.room: 'Lab' does not match '\^\[a-z\]\+\$'$"):
        schemas.check("x.happened.v1", "service/somesvc", {"count": 3, "where": {"room": "Lab"}})
    with pytest.raises(InvalidInput, match=r"^data\.count: -1 is less than the minimum of 0$"):
        schemas.check("x.happened.v1", "service/somesvc", {"count": -1})
    with pytest.raises(InvalidInput, match=r"^data: 'count' is a required property$"):
        schemas.check("x.happened.v1", "service/somesvc", {})


@pytest.mark.parametrize("schema, reason", [
    (b"{not json", "schema is not JSON"),
    (b"[1, 2]", "schema must be a JSON object"),
    ({"type": "nonsense"}, "not a valid JSON Schema (Draft 2020-12): at type: 'nonsense' is not valid"),
    ({"properties": {"a": {"pattern": "("}}}, "not a valid JSON Schema (Draft 2020-12): at properties/a/pattern"),
    ({"$ref": "https://example.com/evil.json"}, "$ref 'https://example.com/evil.json': only local references"),
    ({"properties": {"a": {"$ref": "other.json#/x"}}}, "$ref 'other.json#/x': only local references"),
    ({"$dynamicRef": "http://example.com/x"}, "$dynamicRef 'http://example.com/x': only local references"),
    ({"properties": {"a": {"$ref": "#/$defs/Missing"}}}, "$ref '#/$defs/Missing' points at nothing in the schema"),
    ({"properties": {"a": {"$id": "https://example.com/a", "type": "string"}}}, "$id below the schema's root"),
    ({"$schema": "http://json-schema.org/draft-07/schema#"}, "$schema 'http://json-schema.org/draft-07/schema#': "
                                                              "only Draft 2020-12"),
    ({"properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}, "pattern '^(a+)+$' repeats a repeated group"),
    ({"patternProperties": {"(x*)*": {}}}, "pattern '(x*)*' repeats a repeated group"),
    (b'{"a":' * 100 + b"1" + b"}" * 100, "schema nested deeper than 64 levels"),
    (b"[" * 100_000, "schema of 100,000 bytes: at most 65,536"),
    (b"[" * 60_000 + b"]" * 5_000, "schema is not JSON: recursion limit exceeded"),  # beyond the parser's limit
])
def test_an_unusable_schema_is_refused_with_the_reason(schema, reason):
    message = refusal(schema)
    assert message.startswith("schema announcement refused: ") and reason in message, message


def test_an_announcement_on_a_malformed_topic_is_refused():
    assert "invalid event type 'X.v1'" in refusal(HAPPENED, topic_type="X.v1")
    schemas = AnnouncedSchemas()
    with pytest.raises(InvalidInput, match="not a schema topic"):
        schemas.offer(Message("choreo/schemas/x.happened.v1", json.dumps(HAPPENED).encode()))


def test_a_schema_at_the_size_limit_is_taken():
    padding = MAX_SCHEMA_BYTES - len(json.dumps({"description": ""}))
    schema = {"description": "x" * padding}
    assert len(json.dumps(schema)) == MAX_SCHEMA_BYTES
    assert parse_schema(json.dumps(schema).encode()) == schema


def test_the_schemas_the_gateway_announces_pass_its_own_checks():
    messages = schema_announcements("somesvc", BUILT_IN_TYPES)
    assert [m.topic for m in messages] == [f"choreo/schemas/{t}/somesvc" for t in sorted(BUILT_IN_TYPES)]
    for message in messages:
        assert message.retain and message.qos == 1 and matches(SCHEMAS_FILTER, message.topic)
        assert parse_schema(message.payload) == BUILT_IN_TYPES[message.topic.split("/")[2]].model_json_schema()


def test_an_unannounced_type_has_no_validator():
    with pytest.raises(InvalidInput, match=r"^unknown event type 'x.happened.v1': no service announces it$"):
        AnnouncedSchemas().validator("x.happened.v1")


def test_two_services_with_one_schema_are_no_conflict():
    schemas = AnnouncedSchemas()
    schemas.offer(announcement(HAPPENED, service="one"))
    schemas.offer(announcement(dict(reversed(HAPPENED.items())), service="two"))  # the same schema, keys reordered
    assert schemas.conflicts == {} and schemas.counts["schema_conflicts"] == 0
    schemas.check("x.happened.v1", "device/anything", {"count": 1})


def test_a_conflict_is_logged_once_counted_visible_and_resolved_by_the_events_source(caplog):
    schemas = AnnouncedSchemas()
    caplog.set_level(logging.WARNING, logger="gateway.announced")
    schemas.offer(announcement(HAPPENED, service="strict"))
    for _ in range(3):  # the retained copy arriving again is no new conflict
        schemas.offer(announcement(LOOSE, service="loose"))
    assert schemas.conflicts == {"x.happened.v1": ("loose", "strict")}
    assert schemas.counts["schema_conflicts"] == 1
    [logged] = [r.getMessage() for r in caplog.records if "conflicting" in r.getMessage()]
    assert logged.startswith("conflicting schemas for x.happened.v1, announced by loose, strict")
    schemas.check("x.happened.v1", "reactor/loose", {"anything": "goes"})
    with pytest.raises(InvalidInput, match="data: 'count' is a required property"):
        schemas.check("x.happened.v1", "service/strict", {"anything": "goes"})
    with pytest.raises(InvalidInput, match=r"^event type 'x.happened.v1' has conflicting schemas, announced by "
                                           r"loose, strict; its source 'device/d-1' is none of them$"):
        schemas.check("x.happened.v1", "device/d-1", {"count": 1})
    schemas.offer(Message("choreo/schemas/x.happened.v1/loose", b"", retain=True))  # withdrawn: no conflict left
    assert schemas.conflicts == {} and schemas.counts["schemas_withdrawn"] == 1
    schemas.check("x.happened.v1", "device/d-1", {"count": 1})


def test_a_service_replaces_its_own_schema():
    schemas = AnnouncedSchemas()
    schemas.offer(announcement(HAPPENED))
    schemas.offer(announcement(LOOSE))
    assert schemas.conflicts == {} and [a.schema for a in schemas.announcements("x.happened.v1")] == [LOOSE]
    schemas.check("x.happened.v1", "service/somesvc", {"anything": "goes"})


def test_the_memory_keeps_schemas_across_restarts_and_withdrawals_too(tmp_path):
    memory = tmp_path / "sink.schemas.json"
    first = AnnouncedSchemas(memory)
    first.offer(announcement(HAPPENED))
    first.offer(announcement(LOOSE, event_type="y.seen.v2", service="other"))
    again = AnnouncedSchemas(memory)
    assert again.types() == ["x.happened.v1", "y.seen.v2"]
    with pytest.raises(InvalidInput, match="data.count"):
        again.check("x.happened.v1", "service/somesvc", {"count": "many"})
    again.offer(Message("choreo/schemas/y.seen.v2/other", b""))
    assert AnnouncedSchemas(memory).types() == ["x.happened.v1"]


def test_an_unreadable_memory_or_a_bad_entry_in_it_is_left_out_and_counted(tmp_path, caplog):
    memory = tmp_path / "sink.schemas.json"
    memory.write_text("{torn")
    assert AnnouncedSchemas(memory).types() == [] and "unreadable" in caplog.text
    entries = [{"type": "x.happened.v1", "service": "somesvc", "schema": HAPPENED},
               {"type": "bad type", "service": "somesvc", "schema": LOOSE},
               {"type": "y.seen.v1", "service": "somesvc", "schema": {"$ref": "https://example.com/x"}}]
    memory.write_text(json.dumps({"announcements": entries}))
    schemas = AnnouncedSchemas(memory)
    assert schemas.types() == ["x.happened.v1"] and schemas.counts["schemas_refused"] == 2


def test_announcements_of_a_plugins_model_carry_its_validation_schema():
    [message] = schema_announcements("ingest", {"reading.v1": ReadingV1})
    assert message.topic == "choreo/schemas/reading.v1/ingest"
    assert json.loads(message.payload) == ReadingV1.model_json_schema(mode="validation")
