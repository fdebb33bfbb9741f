"""A service process publishes its counters, retained, below its manifest; checked with paho-mqtt."""
import json

import pytest

from gateway.events import Measurement, ReadingV1, new_event
from gateway.topics import event_topic
from tests.helpers import MqttObserver, wait_for

pytestmark = pytest.mark.integration


def reading(subject: str, value: float) -> tuple[str, bytes]:
    event = new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=value)]),
                      source=f"device/{subject}", subject=subject)
    return event_topic(event.type, event.subject), event.to_json()


def test_a_reactor_reports_its_counters_while_running_and_once_more_at_its_stop(stack, services, tmp_path):
    env = {**stack.env("threshold"), "CHOREO_REACTORS_STATE_DIR": str(tmp_path)}
    with MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], "counters-observer") as observer:
        observer.subscribe("choreo/services/threshold/#")
        reactor = services.start("threshold", ["reactor", "threshold"], env)
        wait_for(lambda: any(json.loads(m.payload).get("status") == "online"
                             for m in observer.on("choreo/services/threshold") if m.topic.count("/") == 2),
                 30, "threshold online")
        observer.publish(*reading("counted-1", 21.0))

        def reports() -> list[dict]:
            return [json.loads(m.payload) for m in observer.on("choreo/services/threshold/counters")]

        def consumed() -> dict | None:
            ours = (r for r in reports() if r["instance"].endswith(f":{reactor.pid}"))  # not a retained old one
            return next((r for r in ours if r["counters"].get("consumed", 0) >= 1), None)

        report = wait_for(consumed, 20, "a counters report with the reading consumed")
        assert report["name"] == "threshold" and report["partition"] is None
        assert report["counters"]["received"] >= 1 and "lag_seconds" in report["counters"]
        assert {"received", "dropped", "published", "publish_failures", "refused", "reconnects",
                "held_back"} <= set(report["transport"])
        before = len(reports())
        reactor.terminate()
        assert reactor.wait(20) == 0
        wait_for(lambda: len(reports()) > before, 10, "the report at the stop")
        assert reports()[-1]["counters"]["consumed"] >= 1
