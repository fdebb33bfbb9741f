from gateway.events import DeviceOfflineV1, DeviceOnlineV1, EventRejectedV1, ReadingV1
from gateway.ingest.service import Ingest
from gateway.transport import Message


def test_telemetry_becomes_a_reading_from_the_device():
    [event] = Ingest().facts(Message("devices/temp-1/telemetry", b'{"seq": 5, "temperature": 21.5}'))
    assert isinstance(event.data, ReadingV1)
    assert (event.source, event.subject, event.sequence) == ("device/temp-1", "temp-1", 5)
    assert event.correlationid == event.id and event.causationid is None


def test_status_becomes_online_and_offline_facts():
    ingest = Ingest()
    [online] = ingest.facts(Message("devices/temp-1/status", b"online", retain=True))
    [offline] = ingest.facts(Message("devices/temp-1/status", b"offline"))
    assert isinstance(online.data, DeviceOnlineV1) and isinstance(offline.data, DeviceOfflineV1)
    assert offline.sequence == online.sequence + 1
    assert ingest.facts(Message("devices/temp-1/status", b"")) == []


def test_bad_input_becomes_a_rejection_naming_reason_topic_and_excerpt():
    ingest = Ingest()
    [rejected] = ingest.facts(Message("devices/temp-1/telemetry", b'{"seq": 1, "temperature": "hot"}'))
    assert isinstance(rejected.data, EventRejectedV1)
    assert rejected.subject == "temp-1"
    assert rejected.data.reason == "field 'temperature' must be a number, got str"
    assert rejected.data.topic == "devices/temp-1/telemetry"
    assert rejected.data.excerpt == '{"seq": 1, "temperature": "hot"}'
    assert ingest.counts["rejected"] == 1


def test_unsafe_device_id_is_rejected_without_becoming_a_subject():
    [rejected] = Ingest().facts(Message("devices/te mp/telemetry", b'{"seq": 1, "temperature": 1}'))
    assert rejected.subject == "unknown"
    assert "invalid device id 'te mp'" in rejected.data.reason


def test_unknown_status_is_rejected():
    [rejected] = Ingest().facts(Message("devices/temp-1/status", b"sleeping"))
    assert "status must be 'online' or 'offline'" in rejected.data.reason


def test_retained_telemetry_is_a_stale_copy_not_a_new_fact():
    ingest = Ingest()
    assert ingest.facts(Message("devices/temp-1/telemetry", b'{"seq": 1, "temperature": 1}', retain=True)) == []
    assert ingest.counts["ignored_retained"] == 1


def test_sequence_gaps_repeats_and_late_messages_are_counted():
    ingest = Ingest()
    for seq in (1, 2, 4, 4, 3, 5, 1, 2):  # a gap after 2, 4 again, 3 late, then the device restarted at 1
        ingest.facts(Message("devices/d-1/telemetry", b'{"seq": %d, "temperature": 1}' % seq))
    counts = ingest.counts
    assert (counts["sequence_gaps"], counts["sequence_repeats"], counts["sequence_late"]) == (1, 1, 1)
