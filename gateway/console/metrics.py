"""`/metrics`: every service's counters and the console's own, in the Prometheus text format 0.0.4.

One scrape target covers the whole choreography: each counter a service published on its counters
topic becomes `choreo_service_counter{service,partition,counter}`, each manifest's status
`choreo_service_up{service,partition}`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**values: str | None) -> str:
    return "{" + ",".join(f'{name}="{escape(value or "")}"' for name, value in values.items()) + "}"


def number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(f"{name}{sample_labels} {number(value)}" for sample_labels, value in samples)]


def exposition(services: list[dict[str, Any]], console: Mapping[str, float],
               counts: Mapping[str, int] | None = None) -> str:
    """The whole page: `services` as LiveState.services() lists them, `console` the console's own figures,
    `counts` what the console counted of what it read (undecodable, duplicates, ...)."""
    counters = [(labels(service=row["name"], partition=row["partition"], counter=name), value)
                for row in services for name, value in sorted(row["counters"].items())]
    up = [(labels(service=row["name"], partition=row["partition"]), 1 if row["status"] == "online" else 0)
          for row in services if row["status"] != "unknown"]
    lines = [
        *family("choreo_service_counter", "untyped",
                "A counter a service reported on choreo/services/NAME/counters (lag_seconds is a gauge).", counters),
        *family("choreo_service_up", "gauge", "1 while the service's retained manifest says online, else 0.", up),
        *family("choreo_console_facts_received_total", "counter", "Facts the console decoded from events/#.",
                [("", console["facts_received"])]),
        *family("choreo_console_facts_skipped_total", "counter",
                "Facts not sent to a stream client: over its rate or its queue full.", [("", console["skipped"])]),
        *family("choreo_console_clients", "gauge", "Open stream clients.", [("", console["clients"])]),
        *family("choreo_console_queued_facts", "gauge", "Facts waiting in the stream clients' queues.",
                [("", console["queued"])]),
        *family("choreo_console_mqtt_dropped_total", "counter",
                "Messages the console's bounded MQTT queue could not take.", [("", console["dropped"])]),
        *family("choreo_console_broker_connected", "gauge", "1 while the console is connected to the broker.",
                [("", console["connected"])]),
        *family("choreo_console_counter", "counter",
                "What the console counted of what it read: facts received, undecodable, duplicates, bad manifests, "
                "bad counters, ...", [(labels(counter=name), value) for name, value in sorted((counts or {}).items())]),
    ]
    return "\n".join(lines) + "\n"
