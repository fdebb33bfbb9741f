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
