"""`choreo demo` runs every installed reactor, each started before the reactors whose facts it consumes."""
from gateway.demo import consumer_commands, start_order
from gateway.events import ActuationRequestedV1, AlertRaisedV1, ReadingV1
from gateway.plugins import reactor_names
from gateway.reactor import Reactor
from gateway.settings import load_settings


def reactor(name: str, consumes, emits) -> Reactor:
    built = Reactor(name)
    built.on(consumes, emits=emits)(lambda event, ctx: [])
    return built


def test_the_sink_starts_first_then_the_bridge_then_every_installed_reactor_then_ingest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = consumer_commands(load_settings({}))
    assert commands[:2] == [("sink", ["sink"]), ("bridge", ["bridge"])] and commands[-1] == ("ingest", ["ingest"])
    reactors = [name for name, _ in commands[2:-1]]
    assert sorted(reactors) == reactor_names()
    assert all(command == ["reactor", name] for name, command in commands[2:-1])
    assert reactors.index("climate") < min(reactors.index("threshold"), reactors.index("anomaly"))


def test_a_consumer_starts_before_its_producer_whatever_the_names():
    chain = [reactor("alerts", ReadingV1, [AlertRaisedV1]), reactor("fans", AlertRaisedV1, [ActuationRequestedV1]),
             reactor("zeta", ActuationRequestedV1, [])]
    assert start_order(chain) == ["zeta", "fans", "alerts"]


def test_a_cycle_falls_back_to_name_order():
    cycle = [reactor("b", AlertRaisedV1, [ActuationRequestedV1]), reactor("a", ActuationRequestedV1, [AlertRaisedV1])]
    assert start_order(cycle) == ["a", "b"]
