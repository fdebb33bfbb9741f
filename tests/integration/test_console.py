"""`choreo console` on the real broker and InfluxDB, every service its own process, read over real HTTP.

Facts come from services or from an admin paho-mqtt client; what the console says is checked against
what the facts were and, where it matters, against the broker (paho) and InfluxDB (a plain /query).
"""
from __future__ import annotations

import json
import signal
import time
from datetime import timedelta

import pytest

from gateway.console.security import CSP
from gateway.console.stream import QUEUE_LIMIT, RATE
from gateway.events import DeviceOnlineV1, Measurement, ReadingV1, new_event
from gateway.service import event_message
from gateway.upcast import as_version
from tests.console.facts import alert, changed, rejected, request
from tests.console.facts import reading as make_reading
from tests.helpers import MqttObserver, influx_query, wait_for
from tests.integration.console_client import ConsoleProcess, EventReader

pytestmark = pytest.mark.integration

FAST_SINK = {"CHOREO_INFLUX_FLUSH_INTERVAL": "0.2"}


def admin(stack, client_id: str) -> MqttObserver:
    return MqttObserver(stack.broker.port, "admin", stack.credentials.mqtt["admin"], client_id)


def publish(observer: MqttObserver, *events, qos: int = 1) -> None:
    observer.publish_all([(m.topic, m.payload) for m in map(event_message, events)], qos=qos)


def stored(stack, statement: str) -> list[dict]:
    return influx_query(stack.influxdb.url, "admin", stack.credentials.influx_admin_password, statement)


def start_console(services, stack, *args: str, env: dict[str, str] | None = None, name: str = "console"):
    console = ConsoleProcess(services, {**stack.env("monitor"), **(env or {})}, *args, name=name)
    console.wait_ready()
    return console


def start_sink(services, stack, tmp_path, observer: MqttObserver):
    seen = len(observer.manifests("sink"))
    sink = services.start("sink", ["sink"], {**stack.env("sink"), **FAST_SINK,
                                             "CHOREO_SINK_SPOOL_DIR": str(tmp_path / "spool")})
    wait_for(lambda: any(m["status"] == "online" for m in observer.manifests("sink")[seen:]), 30, "the sink online")
    return sink


def service_row(console: ConsoleProcess, label: str) -> dict | None:
    answer = console.answers("/api/services")
    return next((row for row in answer.json if row["label"] == label), None) if answer else None


def test_the_map_shows_services_online_then_offline_with_rates_device_groups_and_counters_on_metrics(
        stack, services, tmp_path):
    console = start_console(services, stack)
    threshold = services.start("threshold", ["reactor", "threshold"],
                               {**stack.env("threshold"), "CHOREO_REACTORS_STATE_DIR": str(tmp_path)})

    def ours(row: dict | None) -> bool:
        return row is not None and row["instance"].endswith(f":{threshold.pid}")

    def threshold_on_map(status: str) -> dict | None:
        row = next((s for s in console.get("/api/map").json["services"] if s["label"] == "threshold"), None)
        return row if ours(row) and row["status"] == status else None

    row = wait_for(lambda: threshold_on_map("online"), 30, "threshold online on the map")
    assert row["consumes"] == ["reading.v1"] and "alert.raised.v1" in row["emits"]
    with admin(stack, "console-map-admin") as observer:
        publish(observer, *(make_reading(f"map-t-{n % 2}") for n in range(6)),
                make_reading("map-h-1", kind="humidity", metric="humidity", unit="%RH"))
        drawn = wait_for(lambda: (m := console.get("/api/map").json) and any(
            g["group"] == "humidity" for g in m["devices"]) and m, 20, "the device groups on the map")
    types = {row["type"]: row for row in drawn["types"]}
    assert "threshold" in types["reading.v1"]["consumers"] and "threshold" in types["alert.raised.v1"]["producers"]
    assert types["reading.v1"]["rate"] >= 0.7
    groups = {group["group"]: group for group in drawn["devices"]}
    assert groups["temperature"]["count"] >= 2 and groups["temperature"]["emits"] == ["reading.v1"]
    assert all(isinstance(group["count"], int) for group in drawn["devices"])  # groups, never one node per device

    # The reactor's counters, published every 5 s, on /api/services and /metrics.
    counted = wait_for(lambda: (r := service_row(console, "threshold")) and ours(r) and
                       r["counters"].get("consumed", 0) >= 7 and r, 20, "threshold's counters with 7 consumed")
    assert counted["status"] == "online" and counted["updated"] and "lag_seconds" in counted["counters"]
    consumed = console.metric('choreo_service_counter{service="threshold",partition="",counter="consumed"}')
    assert consumed == counted["counters"]["consumed"]
    assert console.metric('choreo_service_up{service="threshold",partition=""}') == 1
    with admin(stack, "console-counters-check") as observer:  # what the broker holds says the same
        observer.subscribe("choreo/services/threshold/counters")
        report = wait_for(lambda: observer.on("choreo/services/threshold/counters"), 10, "the retained counters")
        assert json.loads(report[-1].payload)["counters"]["consumed"] == consumed

    # A service killed without a goodbye: its will marks it offline.
    threshold.send_signal(signal.SIGKILL)
    threshold.wait()
    wait_for(lambda: threshold_on_map("offline"), 30, "threshold offline on the map after its will")
    assert console.metric('choreo_service_up{service="threshold",partition=""}') == 0


def test_the_stream_filters_samples_a_flood_and_a_stalled_client_slows_nobody(stack, services):
    console = start_console(services, stack)
    assert console.get("/api/stream?subject=a%20b").json == {
        "error": "invalid subject 'a b': use 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit"}
    assert console.get("/api/stream?type=Reading").status == 400
    flood = 3000
    with EventReader(console.port, "?subject=flood-1") as wanted, \
            EventReader(console.port, "?type=alert.raised.v1&subject=flood-1") as alerts, \
            EventReader(console.port, "", read=False):
        wait_for(lambda: wanted.of("services") and alerts.of("map"), 10, "the streams open")
        assert wanted.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        with admin(stack, "console-flood") as observer:
            publish(observer, *(make_reading("flood-1", value=n % 40) for n in range(flood)),
                    *(make_reading("flood-2") for _ in range(500)), qos=0)

        def accounted() -> int:
            return len(wanted.of("fact")) + sum(event["skipped"] for event in wanted.of("skipped"))

        wait_for(lambda: accounted() == flood, 30, f"{flood} facts sent or counted as skipped")
        elapsed = time.monotonic() - started
        facts = wanted.of("fact")
        assert {fact["subject"] for fact in facts} == {"flood-1"} and facts[0]["summary"].startswith("temperature=")
        assert len(facts) <= RATE * (elapsed + 2)  # sampled: at most 50 a second
        assert 1 <= len(wanted.of("skipped")) <= elapsed + 2  # said at most once a second
        assert alerts.of("fact") == []
        received = console.metric("choreo_console_facts_received_total")
        assert received is not None and received >= flood + 500  # the consumer kept up with the flood
        assert console.metric("choreo_console_mqtt_dropped_total") == 0
        assert console.metric("choreo_console_clients") == 3
        assert console.metric("choreo_console_queued_facts") <= 3 * QUEUE_LIMIT  # bounded, the stalled one too
        assert console.metric("choreo_console_facts_skipped_total") >= flood - len(facts)
    wait_for(lambda: console.metric("choreo_console_clients") == 0, 20, "the closed streams to be forgotten")


def test_a_trace_from_the_stored_history_completes_live(stack, services, tmp_path):
    root = make_reading("trace-t-1", value=29.5)
    base = root.emittedtime

    def emitted(event, milliseconds):
        return event.model_copy(update={"emittedtime": base + timedelta(milliseconds=milliseconds)})

    raised = emitted(alert(root), 120)
    asked = emitted(request(raised, "trace-fan-1"), 150.5)
    done = emitted(changed(asked, "trace-fan-1"), 400)
    with admin(stack, "console-trace-admin") as observer:
        observer.subscribe("choreo/services/#")
        start_sink(services, stack, tmp_path, observer)
        publish(observer, root, raised, asked)
        wait_for(lambda: len(stored(stack, f"SELECT id FROM events WHERE correlationid = '{root.id}'")) == 2
                 and stored(stack, f"SELECT id FROM readings WHERE id = '{root.id}'"),  # a reading: one point there
                 30, "the first three steps stored")
        console = start_console(services, stack)  # started after them: it knows them from InfluxDB only
        trace = console.get(f"/api/trace/{raised.id}").json
        assert trace["correlationid"] == root.id and not trace["live"]
        assert [step["type"] for step in trace["events"]] == ["reading.v1", "alert.raised.v1",
                                                              "actuation.requested.v1"]
        publish(observer, done)
        complete = wait_for(lambda: len((t := console.get(f"/api/trace/{root.id}").json)["events"]) == 4 and t,
                            20, "the trace completed by the live actuator.changed.v1")
    assert complete["live"]
    steps = complete["events"]
    assert [s["type"] for s in steps] == ["reading.v1", "alert.raised.v1", "actuation.requested.v1",
                                          "actuator.changed.v1"]
    assert [s["took_ms"] for s in steps] == [None, 120.0, 30.5, 249.5]
    assert [s["service"] for s in steps] == ["trace-t-1", "threshold", "climate", "trace-fan-1"]
    assert [s["causationid"] for s in steps] == [None, root.id, raised.id, asked.id]
    assert steps[1]["summary"] == "temperature_high: 29 Cel > 28 for 2s" and steps[3]["data"]["state"] == "on"
    assert console.get(f"/api/trace/{asked.id}").json["correlationid"] == root.id
    unknown = console.get("/api/trace/01J0000000000000000000NONE")
    assert unknown.status == 404 and unknown.json["error"].startswith("no event 01J0000000000000000000NONE")
    assert console.get("/api/trace/short").json == {
        "error": "'short' is not an event id: expected 10-64 characters of A-Z a-z 0-9 _ -"}


def test_a_device_page_and_the_rejections_come_from_the_stored_history_and_the_live_facts(stack, services,
                                                                                          tmp_path):
    now = make_reading("x").time
    readings = [new_event(ReadingV1(measurements=[Measurement(name="temperature", unit="Cel", value=20 + n),
                                                  Measurement(name="humidity", unit="%RH", value=40 + n)],
                                    kind="climate", site="hq", room="lab"),
                          source="device/chart-1", subject="chart-1", time=now - timedelta(seconds=30 - n))
                for n in range(30)]
    online = new_event(DeviceOnlineV1(), source="gateway/ingest", subject="chart-1", time=now - timedelta(seconds=40))
    first_rejection = rejected("chart-1", reason="first")
    with admin(stack, "console-device-admin") as observer:
        observer.subscribe("choreo/services/#")
        start_sink(services, stack, tmp_path, observer)
        raised_v1 = alert(readings[-1])  # and the same fact as v2, as threshold emits it in a migration window
        publish(observer, online, *readings, raised_v1, as_version(raised_v1, "alert.raised.v2"), first_rejection)
        wait_for(lambda: len(stored(stack, "SELECT temperature FROM readings WHERE device = 'chart-1'")) == 30
                 and stored(stack, f"SELECT id FROM events WHERE id = '{first_rejection.id}'"), 30, "all stored")
        console = start_console(services, stack)
        second_rejection = rejected("chart-1", reason="second <script>alert(1)</script>")
        publish(observer, second_rejection)
        wait_for(lambda: any(r["id"] == second_rejection.id for r in console.get("/api/rejected").json), 20,
                 "the live rejection")

    page = console.get("/api/device/chart-1?since=1h").json
    assert page["device"] == "chart-1" and not page["truncated"]
    assert page["readings"]["temperature"]["unit"] == "Cel" and page["readings"]["humidity"]["unit"] == "%RH"
    points = page["readings"]["temperature"]["points"]
    assert [value for _, value in points] == [20.0 + n for n in range(30)]
    assert points[0][0] == int(readings[0].time.timestamp() * 1000)
    assert {"name": "temperature", "unit": "Cel", "value": 49.0} in page["state"]["measurements"]
    assert page["state_type"] == "reading.v1"
    [raised] = page["alerts"]  # one fact, shown as its newest version
    assert raised["type"] == "alert.raised.v2" and raised["summary"].startswith("temperature_high (warning)")
    assert [event["type"] for event in page["availability"]] == ["device.online.v1"]
    assert console.get("/api/device/chart-1?since=yesterday").json["error"].startswith("since 'yesterday'")
    assert console.get("/api/device/a%20b").status == 400

    rows = [row for row in console.get("/api/rejected?limit=200").json if row["subject"] == "chart-1"]
    assert [row["id"] for row in rows] == [second_rejection.id, first_rejection.id]  # newest first, once each
    assert rows[0]["reason"] == "second <script>alert(1)</script>" and rows[0]["rejected_by"] == "gateway/ingest"
    assert rows[1]["topic"] == "devices/chart-1/telemetry" and rows[1]["excerpt"] == '{"temperature": "hot"}'
    assert len(console.get("/api/rejected?limit=1").json) == 1
    assert console.get("/api/rejected?limit=0").json == {"error": "limit '0': expected a whole number from 1 to 1000"}


def test_security_token_headers_traversal_and_malformed_input(stack, services, tmp_path):
    refused = services.start("exposed", ["console", "--host", "0.0.0.0", "--port", "0"], stack.env("monitor"))
    assert refused.wait(30) == 2
    assert "needs a token" in services.log("exposed")

    token = "s3cret-" + "x" * 30
    guarded = ConsoleProcess(services, {**stack.env("monitor"), "CHOREO_CONSOLE_TOKEN": token}, name="guarded")
    wait_for(lambda: guarded.answers("/api/map", 401), 30, "the guarded console")
    assert guarded.get("/api/map", {"Authorization": "Bearer wrong-but-long-enough"}).status == 403
    # It listens before its broker connection is up (and answers 503 until then): wait for the 200.
    wait_for(lambda: guarded.get("/api/map", {"Authorization": f"Bearer {token}"}).status == 200, 30,
             "the guarded console connected and letting the token in")
    assert guarded.get("/?token=not-the-token-at-all").status == 403
    login = guarded.get(f"/?token={token}")
    assert login.status == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert guarded.get("/api/services", {"Cookie": cookie.split(";")[0]}).status == 200
    assert token not in services.log("guarded")

    console = start_console(services, stack)
    for path in ("/", "/api/map", "/nothing-here", "/api/trace/x", "/metrics", "/static/missing.js"):
        headers = console.get(path).headers
        assert headers["content-security-policy"] == CSP, path
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    with EventReader(console.port) as stream:
        wait_for(lambda: stream.head, 10, "the stream's headers")
        assert stream.headers["content-security-policy"] == CSP
    for path in ("/static/../app.py", "/static/..%2Fapp.py", "/static/%2e%2e%2fapp.py", "/static/.%2E/app.py",
                 "/static/..", "/vendor/..%2F..%2F..%2Fpyproject.toml", "/static/%2Fetc%2Fpasswd"):
        answer = console.get(path)
        assert answer.status == 404, path
        assert b"import" not in answer.body and b"root:" not in answer.body
    assert console.get("/vendor/unknown.js").json["error"].startswith("no library 'unknown.js'")
    assert console.get("/api/map", {"Host": "attacker.example"}).status == 403  # DNS rebinding
    for path, message in (("/api/trace/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "is not an event id"),
                          ("/api/device/%3Cb%3E", "invalid device id '<b>'"),
                          ("/api/stream?source=device/%22%3E", "invalid source"),
                          ("/api/rejected?limit=ten", "limit 'ten'"),
                          ("/api/device/ok?since=1y", "since '1y'")):
        answer = console.get(path)
        assert answer.status == 400 and message in answer.json["error"], path
        assert answer.headers["content-type"] == "application/json"


def test_without_influxdb_the_history_is_503_while_the_live_parts_go_on_and_without_the_broker_the_map_is(
        fresh_stack, services):
    stack = fresh_stack
    console = start_console(services, stack)
    stack.influxdb.stop()
    for path in ("/api/device/dev-a", "/api/rejected", "/api/trace/01J0000000000000000000NONE"):
        answer = console.get(path)
        assert answer.status == 503, path
        assert answer.json["error"].startswith("the stored history is unavailable: InfluxDB at"), path
    with EventReader(console.port, "?subject=dev-a") as stream, admin(stack, "console-down-admin") as observer:
        wait_for(lambda: stream.of("services"), 10, "the stream open")
        fact = make_reading("dev-a")
        publish(observer, fact)
        wait_for(lambda: [f["id"] for f in stream.of("fact")] == [fact.id], 10, "the fact on the stream")
    assert console.get("/api/map").status == 200
    trace = console.get(f"/api/trace/{fact.id}").json  # the live buffer still knows it
    assert [e["id"] for e in trace["events"]] == [fact.id] and trace["history_error"].startswith("the stored")

    stack.broker.stop()
    refused = wait_for(lambda: console.answers("/api/map", 503), 30, "the map refused without the broker")
    assert refused.json["error"].startswith("not connected to the broker at 127.0.0.1:")
    assert console.metric("choreo_console_broker_connected") == 0
    stack.broker.start()
    wait_for(lambda: console.answers("/api/map"), 60, "the map back with the broker")
