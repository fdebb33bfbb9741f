"""SIGHUP makes a running reactor re-read its settings, and it keeps its state."""
import json
import signal

import pytest

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration


def reading(value: float) -> tuple[str, bytes]:
    event = new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)]),
                      source="device/r-1", subject="r-1")
    return event_topic(event.type, event.subject), event.to_json()


def test_sighup_reloads_settings_without_losing_state(stack, services, tmp_path):
    config = tmp_path / "choreo.toml"
    config.write_text("[reactors.threshold]\nhigh = 28.0\nmin_duration = 0\n")
    env = {**stack.env("threshold"), "CHOREO_CONFIG": str(config), "CHOREO_REACTORS_STATE_DIR": str(tmp_path)}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "reload-observer") as observer:
        observer.subscribe("choreo/services/threshold")
        observer.subscribe("events/+/r-1")
        reactor = services.start("threshold", ["reactor", "threshold"], env)
        wait_for(lambda: any(json.loads(m.payload)["status"] == "online" for m in observer.on("choreo/services/")),
                 30, "threshold online")

        def alerts():
            facts = [json.loads(m.payload) for m in observer.on("events/alert.")]
            return [(fact["type"], fact["data"]["limit"]) for fact in facts]

        observer.publish(*reading(29.0))
        # in both versions (the migration window of docs/evolving-events.md)
        wait_for(lambda: sorted(alerts()) == [("alert.raised.v1", 28.0), ("alert.raised.v2", 28.0)], 20,
                 "the alert under the first limit")
        config.write_text("[reactors.threshold]\nhigh = 40.0\nmin_duration = 0\n")
        reactor.send_signal(signal.SIGHUP)
        wait_for(lambda: "threshold reloaded its settings" in services.log("threshold"), 20, "the reload")
        observer.publish(*reading(30.0))  # above the old limit, but below the new one minus hysteresis
        wait_for(lambda: len(alerts()) == 3, 20, "the clear under the new limit")
        assert alerts()[2] == ("alert.cleared.v1", 39.0)  # the raised state survived the reload

        config.write_text("[reactors.threshold]\nhigh = 'hot'\n")
        reactor.send_signal(signal.SIGHUP)
        wait_for(lambda: "threshold kept its settings" in services.log("threshold"), 20, "the refused reload")
        assert "choreo.toml [reactors.threshold] high: Input should be a valid number" in services.log("threshold")
        assert reactor.poll() is None
