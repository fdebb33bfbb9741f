"""One model writes a service's manifest and reads it back: ServiceSpec and Manifest."""
import json
import os

import pytest

from gateway.choreography import collect_manifests
from gateway.manifest import Manifest, ServiceSpec
from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport, Message

THRESHOLD = ServiceSpec("threshold", ("events/reading.v1/+",), ("reading.v1",), ("alert.raised.v1",), "1.2.0",
                        partition="0-of-2")


def test_a_manifest_reads_back_as_the_spec_that_wrote_it():
    message = THRESHOLD.manifest(online=True)
    assert (message.topic, message.qos, message.retain) == ("choreo/services/threshold/0-of-2", 1, True)
    manifest = Manifest.parse(message.payload)
    assert manifest.spec == THRESHOLD and manifest.online
    assert manifest.instance.endswith(f":{os.getpid()}")
    assert manifest.spec.label == "threshold[0-of-2]"
    assert not Manifest.parse(THRESHOLD.manifest(online=False).payload).online


def test_only_name_and_status_are_required():
    manifest = Manifest.parse(b'{"name": "exporter", "status": "online"}')
    assert manifest.spec == ServiceSpec("exporter", reads=(), consumes=(), emits=(), version="")
    assert manifest.spec.label == "exporter" and manifest.instance == ""


@pytest.mark.parametrize("payload", [b"not json", b"\xff", b"[1, 2]", b'"online"', b'{"name": "x"}',
                                     b'{"name": "x", "status": "online", "emits": 5}'])
def test_what_is_not_a_manifest_is_a_value_error(payload):
    with pytest.raises(ValueError):
        Manifest.parse(payload)


async def test_the_map_collects_the_manifests_and_skips_what_is_none():
    broker = MemoryBroker()
    async with MemoryTransport(broker, ClientConfig("publisher")) as publisher:
        await publisher.publish(THRESHOLD.manifest(online=True))
        await publisher.publish(Message("choreo/services/junk", json.dumps([1]).encode(), qos=1, retain=True))
    async with MemoryTransport(broker, ClientConfig("map")) as reader:
        [manifest] = await collect_manifests(reader, quiet=0.1)
    assert manifest.spec == THRESHOLD
