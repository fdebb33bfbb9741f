"""Values full of line-protocol metacharacters are stored exactly and never add tags, fields or points."""
import asyncio
import json
import uuid

import pytest

from gateway.events import EventRejectedV1, new_event
from gateway.topics import event_topic
from gateway.transport import Message
from tests.helpers import influx_query
from tests.sink.test_sink_influxdb import Harness

pytestmark = pytest.mark.integration

HOSTILE = [
    'comma, space and=equals',
    'quote " backslash \\ and \\" escaped quote',
    "trailing backslash \\",
    "new\nline and \r carriage return",
    'fake field",x=1i,y="2',
    "fake point\nevents,type=x value=1 1",
    "tab\tand unicode: température 🌡️ 温度 \u2028 separator",
    "\\\\ double backslash, =,  ",
]


async def test_hostile_strings_round_trip_exactly(fresh_stack):
    stack = fresh_stack
    harness = Harness(stack)
    subject = f"h-{uuid.uuid4().hex[:6]}"
    sent = []
    for text in HOSTILE:
        data = EventRejectedV1(reason=text, rejected_by="gateway/ingest", topic=f"devices/{subject}/telemetry",
                               excerpt=text)
        event = new_event(data, source="gateway/ingest", subject=subject)
        harness.deliver(Message(event_topic(event.type, event.subject), event.to_json()))
        sent.append(event)
    await harness.sink.flush(asyncio.Event())
    assert harness.sink.counts["rejected"] == 0

    def query(statement):
        return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)

    rows = query(f"SELECT * FROM events WHERE subject = '{subject}'")
    assert len(rows) == len(HOSTILE)  # no extra points
    stored = {row["id"]: json.loads(row["data"]) for row in rows}
    for event in sent:
        assert stored[event.id] == event.data.model_dump(mode="json")  # every character back as sent
    tag_keys = {row["tagKey"] for row in query("SHOW TAG KEYS FROM events")}
    assert tag_keys <= {"type", "subject", "source", "site", "room"}  # no tag smuggled in
    field_keys = {row["fieldKey"] for row in query("SHOW FIELD KEYS FROM events")}
    assert field_keys <= {"id", "correlationid", "causationid", "sequence", "emittedtime", "data"}
    assert {row["name"] for row in query("SHOW MEASUREMENTS")} <= {"events", "readings"}
