"""Native telemetry through ingest: the facts and their JSON are those of the general, fully validated path.

Ingest reuses measurements it validated before and keeps a reading's parts instead of a model
(gateway/ingest/simjson.py); here each fact is rebuilt from its parts through the pydantic models
and must serialize byte for byte the same, for many payloads.
"""
from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import InvalidInput
from gateway.events import Measurement, ReadingV1, decode_event, new_event
from gateway.ingest import simjson
from gateway.ingest.service import Ingest
from gateway.service import event_message
from gateway.transport import Message

NOW = datetime.now(UTC)
VALUES = [0, 0.0, -0.0, 1, -1, 20.5, 21.5, 97, 1e-300, -3.25, 1e300, 2**53 + 1, 0.1 + 0.2]


def telemetry(rng: random.Random, sequence: int) -> dict[str, object]:
    names = rng.sample(sorted(simjson.FIELD_UNITS), rng.randint(1, len(simjson.FIELD_UNITS)))
    document: dict[str, object] = {"seq": sequence}
    if rng.random() < 0.8:
        moment = NOW - timedelta(seconds=rng.uniform(0, 3600))
        document["ts"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    document.update({name: rng.choice(VALUES) for name in names})
    return document


def expected_json(event, document: dict[str, object]) -> bytes:
    """The event as the general path builds it: every model validated from the raw values."""
    measurements = [Measurement(name=name, unit=simjson.FIELD_UNITS[name], value=float(value))
                    for name, value in document.items() if name in simjson.FIELD_UNITS]
    rebuilt = new_event(ReadingV1(measurements=measurements), source=event.source, subject=event.subject,
                        time=event.time, sequence=event.sequence, event_id=event.id)
    return rebuilt.model_copy(update={"emittedtime": event.emittedtime}).to_json()


@pytest.mark.parametrize("seed", range(5))
def test_a_native_reading_serializes_as_the_validated_models_would(seed):
    rng = random.Random(seed)
    ingest = Ingest(None)
    for sequence in range(400):
        document = telemetry(rng, sequence)
        device = f"dev-{rng.randint(0, 20)}"
        [event] = ingest.facts(Message(f"devices/{device}/telemetry", json.dumps(document).encode()))
        message = event_message(event)
        assert message.payload == expected_json(event, document)
        assert decode_event(message.payload, topic=message.topic) == event


def test_negative_zero_keeps_its_sign_after_a_positive_zero():
    first = simjson.decode(b'{"seq": 1, "temperature": 0.0}', NOW).measurements[0]
    second = simjson.decode(b'{"seq": 2, "temperature": -0.0}', NOW).measurements[0]
    assert (first.model_dump_json(), second.model_dump_json()) == (
        '{"name":"temperature","unit":"Cel","value":0.0}', '{"name":"temperature","unit":"Cel","value":-0.0}')


def test_a_reading_decoded_alone_is_still_a_validated_reading_v1():
    decoded = simjson.decode(b'{"seq": 1, "temperature": 21.5, "battery": 97}', NOW)
    assert decoded.data == ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=21.5),
                                                   Measurement(name="battery", unit="%EL", value=97.0)])
    assert decoded.actuator is None


def test_a_key_given_twice_is_still_rejected_by_name():
    with pytest.raises(InvalidInput, match="field 'temperature' appears more than once"):
        simjson.parse_object(b'{"seq": 1, "temperature": 1, "battery": 2, "temperature": 3}')
