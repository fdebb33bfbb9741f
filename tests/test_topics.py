import pytest

from gateway.errors import InvalidInput
from gateway.topics import device_id_from_topic, event_filter, event_topic, matches, telemetry_topic, validate_id


@pytest.mark.parametrize("good", ["temp-1", "A", "room_3-fan", "x" * 64, "0abc"])
def test_valid_ids(good):
    assert validate_id(good) == good


@pytest.mark.parametrize("bad", ["", "+", "#", "a/b", "a+b", "-lead", "_lead", "x" * 65, "a b", "a\nb", "é", "..",
                                 "$SYS", "a,b", "a=b"])
def test_invalid_ids_are_refused(bad):
    with pytest.raises(InvalidInput, match="invalid device id"):
        validate_id(bad)


def test_topic_templates():
    assert telemetry_topic("temp-1") == "devices/temp-1/telemetry"
    assert event_topic("alert.raised.v1", "temp-1") == "events/alert.raised.v1/temp-1"
    assert event_filter("reading.v1") == "events/reading.v1/+"
    with pytest.raises(InvalidInput):
        event_topic("Alert", "temp-1")
    with pytest.raises(InvalidInput):
        event_topic("reading.v1", "+")


def test_device_id_from_topic():
    assert device_id_from_topic("devices/temp-1/telemetry") == "temp-1"
    for topic in ("devices/temp+1/telemetry", "devices/a/b/telemetry", "other/temp-1/telemetry"):
        with pytest.raises(InvalidInput):
            device_id_from_topic(topic)


@pytest.mark.parametrize(
    "topic_filter, topic, expected",
    [
        ("events/#", "events/reading.v1/t", True),
        ("events/#", "events", True),
        ("events/+/t", "events/reading.v1/t", True),
        ("events/+/t", "events/reading.v1/u", False),
        ("events/+", "events/reading.v1/t", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
        ("$share/sinks/events/#", "events/x/y", True),
    ],
)
def test_filter_matching(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected


def test_schema_topics_name_the_type_and_the_announcing_service():
    from gateway.topics import SCHEMAS_FILTER, schema_topic, schema_topic_levels

    assert schema_topic("x.happened.v1", "somesvc") == "choreo/schemas/x.happened.v1/somesvc"
    assert matches(SCHEMAS_FILTER, schema_topic("x.happened.v1", "somesvc"))
    assert schema_topic_levels("choreo/schemas/x.happened.v1/somesvc") == ("x.happened.v1", "somesvc")
    for event_type, service, message in (("X.v1", "svc", "invalid event type"), ("x.v1", "+", "invalid service name"),
                                         ("x.v1", "a/b", "invalid service name"), ("#", "svc", "invalid event type")):
        with pytest.raises(InvalidInput, match=message):
            schema_topic(event_type, service)
    for topic in ("choreo/schemas/x.v1", "choreo/schemas/x.v1/a/b", "choreo/services/x.v1/a", "events/x.v1/a"):
        with pytest.raises(InvalidInput, match="not a schema topic"):
            schema_topic_levels(topic)
    with pytest.raises(InvalidInput, match="invalid service name"):
        schema_topic_levels("choreo/schemas/x.v1/-bad")
