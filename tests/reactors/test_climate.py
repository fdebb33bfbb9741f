from gateway.events import AlertClearedV1, AlertRaisedV1
from gateway.fleet import Fleet, Registry
from gateway.settings import load_settings
from reactors import climate

FLEET = Fleet.model_validate({"sites": [{"id": "hq", "rooms": [
    {"id": "lab", "devices": [{"kind": "temperature", "count": 2}, {"kind": "fan", "count": 2}, {"kind": "heater"}]},
    {"id": "office", "devices": [{"kind": "temperature"}]}]}]})
SETTINGS = load_settings({})


def alert(raised: bool, room: str = "lab", name: str = "temperature.high"):
    kind = AlertRaisedV1 if raised else AlertClearedV1
    extra = {"above_seconds": 3} if raised else {}
    return kind(alert=name, metric="temperature", value=29, limit=28, unit="Cel", site="hq", room=room, **extra)


def reactor():
    return climate.build(SETTINGS, Registry(FLEET))


async def test_first_raise_in_a_room_asks_its_fans_to_run_and_last_clear_stops_them(harness_for):
    async with harness_for(reactor()) as harness:
        cause = harness.event(alert(True), subject="lab-temperature-1", source="reactor/threshold")
        on = await harness.send(cause)
        second = await harness.send(alert(True), subject="lab-temperature-2", source="reactor/threshold")
        first_clear = await harness.send(alert(False), subject="lab-temperature-1", source="reactor/threshold")
        off = await harness.send(alert(False), subject="lab-temperature-2", source="reactor/threshold")
    assert [(f.subject, f.data.state) for f in on] == [("lab-fan-1", "on"), ("lab-fan-2", "on")]
    assert all(f.causationid == cause.id and f.correlationid == cause.correlationid for f in on)
    assert second == [] and first_clear == []
    assert [(f.subject, f.data.state) for f in off] == [("lab-fan-1", "off"), ("lab-fan-2", "off")]


async def test_other_alerts_sources_and_rooms_without_fans_ask_nothing(harness_for):
    async with harness_for(reactor()) as harness:
        threshold = {"source": "reactor/threshold"}
        assert await harness.send(alert(True, name="humidity.high"), subject="lab-temperature-1", **threshold) == []
        assert await harness.send(alert(True, room="office"), subject="office-temperature-1", **threshold) == []
        assert await harness.send(alert(True), subject="lab-temperature-1", source="reactor/anomaly") == []


def test_climate_runs_as_one_instance():
    import pytest

    from gateway.errors import ConfigError
    from gateway.reactor import ReactorRunner
    from gateway.transport import ClientConfig, MemoryBroker, MemoryTransport

    with pytest.raises(ConfigError, match="run one instance"):
        ReactorRunner(reactor(), MemoryTransport(MemoryBroker(), ClientConfig("c")), partition=(0, 2))


async def test_a_v1_alert_reaches_the_v2_handler_upcast_and_a_fact_in_both_versions_is_handled_once(harness_for):
    from gateway.events import AlertRaisedV2
    from gateway.upcast import as_version

    built = reactor()
    assert {"alert.raised.v1", "alert.raised.v2"} <= set(built.consumes)
    async with harness_for(built) as harness:
        v1 = harness.event(alert(True), subject="lab-temperature-1", source="reactor/threshold")
        on = await harness.send(v1)
        again_as_v2 = await harness.send(as_version(v1, "alert.raised.v2"))  # the same fact, the other version
        v2 = harness.event(AlertRaisedV2(
            alert="temperature.high", metric="temperature", value=30, limit=28, unit="Cel", site="hq", room="office",
            above_seconds=3, severity="critical", rule="temperature > 28 for 3s"), subject="office-temperature-1",
            source="reactor/threshold")
        office = await harness.send(v2)
    assert [(f.subject, f.data.state) for f in on] == [("lab-fan-1", "on"), ("lab-fan-2", "on")]
    assert all(f.causationid == v1.id and f.correlationid == v1.correlationid for f in on)
    assert "(warning)" in on[0].data.reason  # what the upcaster says a v1 alert's severity is
    assert again_as_v2 == [] and office == []  # handled once; the office has no fans
    assert harness.runner.counts["upcast:alert.raised.v2"] == 1 and harness.runner.counts["duplicates"] == 1


async def test_as_before_the_migration_it_handles_v1_only(harness_for):
    built = climate.build(load_settings({"CHOREO_REACTORS_CLIMATE_ALERT_VERSION": "v1"}), Registry(FLEET))
    assert "alert.raised.v2" not in built.consumes and not built.upcast
