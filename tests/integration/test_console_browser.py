"""The web console in a real browser: Playwright drives Debian's chromium against `choreo console` on a running
stack with the demo fleet, every service its own OS process as in production.

One stack and one browser serve the whole module. Each test opens its own page and fails on any error the page
logs (a script error, a refused Content-Security-Policy rule, a failed request the test did not ask for). The
tests save a screenshot of each view, by default under pytest's temporary folder; `--console-screenshots
docs/console` refreshes the ones docs/console.md shows.
"""
from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright

from gateway.console.vendor import VENDOR_FILES
from gateway.declarations import declarations
from gateway.demo import DEMO_SETTINGS, consumer_commands
from gateway.localstack import LocalStack, answers, free_ports
from gateway.settings import load_fleet, load_settings
from tests.conftest import ServiceProcesses
from tests.helpers import MqttObserver, wait_for
from tests.test_hostile_input import ROWS, Row, fact, telemetry

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
NODE_MODULES = Path(__file__).resolve().parents[2] / "tools" / "console" / "node_modules"
# Without the background-networking flags chromium tries to reach the network, which is closed here.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 760}
SETTINGS = {**DEMO_SETTINGS, "CHOREO_INFLUX_FLUSH_INTERVAL": "0.2"}
# the threshold reactor emits each alert as v2 and v1 under one id (the migration window); a trace shows the newest
CHAIN = ["reading.v1", "alert.raised.v2", "actuation.requested.v1", "actuator.changed.v1"]
TIMEOUT = 90_000  # ms: the demo's lab warms past the alert limit once a simulated day (60 s)

ALERT_WITH_REQUEST = """() => {
    const correlations = (type) => [...document.querySelectorAll(`.stream-table tr[data-type="${type}"]`)]
        .map((row) => [row.dataset.correlation, row.dataset.id]);
    const requested = new Set(correlations("actuation.requested.v1").map(([correlation]) => correlation));
    const found = correlations("alert.raised.v1").find(([correlation]) => requested.has(correlation));
    return found ? found[1] : null;
}"""

# Markup a device or a service could send: shown as text, none of it may run. No single quote, so that
# Python's repr in a rejection's reason quotes them unchanged.
SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '"><img src=x onerror="window.__pwned = 2; alert(2)">'
SVG = '<svg onload="window.__pwned = 3">'
HOSTILE = [
    # A rejection fact whose every text field is markup: admin may publish any fact.
    fact("h-markup", None, {"data.reason": f"{SCRIPT} {SVG}", "data.excerpt": IMG,
                            "data.topic": "devices/<b>bold</b>/telemetry"}, type_="event.rejected.v1"),
    # A device id that is markup: ingest rejects it, quoting the id in the reason and the topic.
    telemetry("h-device-id", {"seq": 1, "temperature": 1}, topic=f"devices/{IMG}/telemetry"),
    # A field name that is a script: ingest rejects it, quoting the name in the reason and the excerpt.
    telemetry("h-field", {"seq": 1, SCRIPT: 1}),
    # The hostile-input table's rows with quotes, control characters, emoji and metacharacters.
    *[row for row in ROWS if row.name in ("e-hostile-text", "r-hostile-text", "t-metachar-id", "t-metachar-key")],
]


class Stack:
    """The demo's choreography, each service a process: sink, every reactor, ingest, the devices, the console."""

    def __init__(self, state_dir: Path) -> None:
        self.settings = load_settings({**os.environ, **SETTINGS})
        fleet = load_fleet(self.settings)
        self.fleet = fleet.devices()
        self.local = LocalStack(state_dir, fleet.accounts(), declarations(self.settings))  # a broker account each
        self.processes = ServiceProcesses(state_dir)
        self.consumers = consumer_commands(self.settings)
        self.state_dir = state_dir
        [self.port] = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Stack:
        self.local.__enter__()
        try:
            self.admin = MqttObserver(self.local.broker.port, "admin", self.local.credentials.mqtt["admin"],
                                      "console-test-admin").__enter__()
            self.admin.subscribe("choreo/services/+")
            for name, command in self.consumers:
                self.start(name, command)
                self.wait_online(name)
            self.start("devices", ["devices"])
            self.processes.start("console", ["console", "--port", str(self.port)],
                                 {**SETTINGS, **self.local.env("monitor")})
            wait_for(lambda: self.alive("console") and answers(f"{self.url}/", 200), 30,
                     f"the console on {self.url} ({self.state_dir / 'console.log'})")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.processes.stop_all()
        if getattr(self, "admin", None) is not None:
            self.admin.__exit__()
        self.local.__exit__()

    def start(self, name: str, command: list[str]) -> None:
        env = {**SETTINGS, "CHOREO_REACTORS_STATE_DIR": str(self.state_dir / "state"), **self.local.env(name)}
        self.processes.start(name, command, env)

    def alive(self, name: str) -> bool:
        process = self.processes.processes[name]
        assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.processes.log(name)[-3000:]}"
        return True

    def status(self, name: str) -> str | None:
        """The status in the newest manifest `name` published (read with paho, not with the product)."""
        manifests = self.admin.on(f"choreo/services/{name}")
        mine = [m for m in manifests if m.topic == f"choreo/services/{name}" and m.payload]
        return json.loads(mine[-1].payload)["status"] if mine else None

    def wait_online(self, name: str) -> None:
        wait_for(lambda: self.alive(name) and self.status(name) == "online", 30, f"{name} online")

    @property
    def services(self) -> list[str]:
        return [name for name, _ in self.consumers]

    def device(self, kind: str, room: str) -> str:
        return next(spec.id for spec in self.fleet if spec.kind == kind and spec.room == room)


@pytest.fixture(scope="module")
def choreography(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = request.config.getoption("--console-screenshots")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page whose script errors, refused rules, failed requests and dialogs are recorded."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.expected_statuses: set[int] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("dialog", self._dialog)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _response(self, response) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.errors.append(f"HTTP {response.status} for {response.url}")

    def open(self, hash_route: str) -> Page:
        self.page.goto(f"{self.base}/#/{hash_route}")
        return self.page

    def check(self) -> None:
        assert self.page.evaluate("window.__pwned") is None, "an injected script ran"
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.errors == [], "\n".join(self.errors)


@pytest.fixture
def watched(browser: Browser, choreography: Stack) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    try:
        page = Watched(context.new_page(), choreography.url)
        yield page
        page.check()
    finally:
        context.close()


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png")


def test_the_page_is_served_with_a_policy_that_refuses_inline_scripts(choreography):
    with urllib.request.urlopen(f"{choreography.url}/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        html = response.read().decode()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    markup = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    assert re.findall(r"<script(?![^>]*\ssrc=)", markup) == []  # no inline script
    assert re.findall(r"\s(on[a-z]+|style)\s*=", markup) == []  # no handler or style attribute
    for library, path in VENDOR_FILES.items():  # the files npm installed from the lockfile, as they are
        with urllib.request.urlopen(f"{choreography.url}/vendor/{library}", timeout=10) as response:
            assert response.read() == (NODE_MODULES / path).read_bytes(), library
        assert f'"/vendor/{library}"' in html, library


def test_an_alert_appears_in_the_stream_and_opens_its_trace_of_four_steps(choreography, watched, screenshots):
    page = watched.open("stream")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    expect(page.locator(".stream-table tbody tr").first).to_be_visible()
    expect(page.locator('.stream-table tr[data-type="alert.raised.v1"]').first).to_be_visible(timeout=TIMEOUT)
    # Only the first alert in a room asks for the fan (climate): open an alert whose chain has the request.
    alert_id = wait_for(lambda: page.evaluate(ALERT_WITH_REQUEST), TIMEOUT / 1000, "an alert and its fan request")
    alert = page.locator(f'.stream-table tr[data-id="{alert_id}"]')
    shoot(page, screenshots, "stream")

    alert.locator("a.trace-link").click()
    expect(page).to_have_url(re.compile(r"#/trace/[0-9A-Za-z]+$"))
    tree = page.locator(".trace-tree")
    # The chain completes live: the actuator's change arrives after the trace was first read.
    expect(tree.locator('.step[data-type="actuator.changed.v1"]')).to_be_visible(timeout=60_000)
    for depth, event_type in enumerate(CHAIN):
        step = tree.locator(f'.step[data-type="{event_type}"]').first
        expect(step).to_be_visible()
        # Each step is nested under the step that caused it.
        assert step.evaluate("(node) => { let n = 0; for (let e = node; e; e = e.parentElement) "
                             "{ if (e.matches('ol.steps')) n += 1; } return n; }") == depth + 1, event_type
        expect(step.locator(".service")).not_to_be_empty()
        expect(step.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
        expect(step.locator(".took")).to_have_text("origin" if depth == 0 else re.compile(r"^\+[\d.,]+ ms$"))
    shoot(page, screenshots, "trace")

    # The trace has its own URL: a new page opened on it shows the same chain.
    other = page.context.new_page()
    other.goto(page.url)
    for event_type in CHAIN:
        expect(other.locator(f'.trace-tree .step[data-type="{event_type}"]').first).to_be_visible()
    other.close()


def test_the_stream_filters_on_the_server_and_pauses_without_losing_count(choreography, watched):
    device = choreography.device("temperature", "lab")
    page = watched.open("stream")
    page.locator('.filters input[name="subject"]').fill(device)
    page.locator(".filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"#/stream\?subject={device}$"))
    rows = page.locator(".stream-table tbody tr")
    expect(rows.nth(2)).to_be_visible()
    assert set(rows.locator("td.subject").all_text_contents()) == {device}

    page.locator("button.pause").click()
    counts = page.locator(".counts")
    expect(counts).to_contain_text("paused")
    newest = rows.first.get_attribute("data-id")
    shown = rows.count()
    wait_for(lambda: int(counts.get_attribute("data-paused")) >= 2, 20, "facts arriving while paused")
    assert (rows.first.get_attribute("data-id"), rows.count()) == (newest, shown)  # the table stood still
    page.locator("button.pause").click()
    expect(rows.first).not_to_have_attribute("data-id", newest)
    assert set(rows.locator("td.subject").all_text_contents()) == {device}


def test_the_map_shows_every_service_online_and_the_device_groups(choreography, watched, screenshots):
    page = watched.open("map")
    for name in choreography.services:
        expect(page.locator(f'.service-list li[data-service="{name}"]')).to_have_attribute("data-status", "online")
    wait_for(lambda: page.evaluate("() => window.choreoConsole.cy && window.choreoConsole.cy.nodes().length"), 10,
             "the graph")
    graph = page.evaluate("""() => {
        const cy = window.choreoConsole.cy;
        return {online: cy.nodes('.service.online').map(n => n.id()), devices: cy.nodes('.devices').length,
                edges: cy.edges().map(e => e.data('label'))};
    }""")
    assert {f"svc:{name}" for name in choreography.services} <= set(graph["online"])
    assert graph["devices"] >= 1  # groups, not one node per device
    assert graph["devices"] < len(choreography.fleet)
    assert any(re.match(r"^reading\.v1 [\d.,]+/s$", line) for label in graph["edges"] for line in label.split("\n"))
    shoot(page, screenshots, "map")


def test_a_device_chart_has_points_and_grows_live(choreography, watched, screenshots):
    device = choreography.device("temperature", "lab")
    page = watched.open(f"device/{device}")
    chart = page.locator('figure.chart[data-metric="temperature"]')
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart).not_to_have_attribute("data-points", "0")
    before = int(chart.get_attribute("data-points"))
    wait_for(lambda: int(chart.get_attribute("data-points")) > before, 20, "a live point on the chart")
    expect(page.locator(".state dd").first).not_to_have_text("unknown")
    shoot(page, screenshots, "device")


def test_the_services_view_shows_the_counters_as_they_change(choreography, watched, screenshots):
    page = watched.open("services")
    sink = page.locator('.services-table tr[data-service="sink"]')
    expect(sink).to_have_attribute("data-status", "online")
    received = sink.locator('td[data-counter="received"]')
    expect(received).to_have_text(re.compile(r"^[\d,]+$"))
    first = int(received.text_content().replace(",", ""))
    wait_for(lambda: int(received.text_content().replace(",", "")) > first, 20, "the sink's next counters")
    for name in choreography.services:
        expect(page.locator(f'.services-table tr[data-service="{name}"]')).to_be_visible()
    expect(page.locator(".updated")).to_contain_text("Last update")
    shoot(page, screenshots, "services")


def publish(choreography: Stack, rows: list[Row]) -> None:
    choreography.admin.publish_all([(row.topic, row.payload) for row in rows])


def test_hostile_text_is_shown_as_text_and_no_script_runs(choreography, watched, screenshots):
    page = watched.open("rejected")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    stream = page.context.new_page()
    stream.on("dialog", lambda dialog: (watched.dialogs.append(dialog.message), dialog.dismiss()))
    stream.goto(f"{choreography.url}/#/stream?type=event.rejected.v1")
    expect(stream.locator("#live")).to_have_attribute("data-state", "open")

    publish(choreography, HOSTILE)

    table = page.locator(".rejected-table")
    for text in (SCRIPT, IMG, SVG, "devices/<b>bold</b>/telemetry", f"invalid device id '{IMG}'",
                 f"devices/{IMG}/telemetry", f"unknown field '{SCRIPT}'"):
        expect(table.get_by_text(text, exact=False).first).to_be_visible()
    # Control, line-separator and bidi characters are shown as escapes; quotes and emoji as they are.
    expect(table.get_by_text('"quote" \\backslash\\', exact=False).first).to_be_visible()
    expect(table.get_by_text("\\u2028", exact=False).first).to_be_visible()
    for text in (SCRIPT, f"invalid device id '{IMG}'"):
        expect(stream.locator(".stream-table").get_by_text(text, exact=False).first).to_be_visible()
    for view in (page, stream):
        assert view.evaluate("window.__pwned") is None
        assert view.locator("img, svg, b, main script").count() == 0
    shoot(page, screenshots, "rejected")

    # The same text in the hostile rejection's trace, where the whole data is shown too.
    page.locator(".rejected-table tr", has_text="devices/<b>bold</b>/telemetry").locator("a.trace-link").click()
    expect(page.locator(".trace-tree .step .summary").first).to_contain_text(SCRIPT)
    page.locator(".trace-tree details summary").first.click()
    expect(page.locator(".trace-tree details pre").first).to_contain_text("<b>bold</b>")
    assert page.evaluate("window.__pwned") is None and page.locator("main img, main svg, main b").count() == 0
    stream.close()


def test_bad_addresses_give_a_clear_message_and_the_live_views_keep_running(choreography, watched):
    watched.expected_statuses = {400, 404}
    page = watched.open("trace/not-an-id!")
    expect(page.locator("main .error")).to_be_visible()
    expect(page.locator("main .error")).not_to_be_empty()
    page.goto(f"{choreography.url}/#/trace/%E0%A4%A")
    expect(page.locator("main .error")).to_contain_text("not a valid console URL")
    page.goto(f"{choreography.url}/#/trace/0000000000ZZZZZZZZZZZZZZZZ")
    expect(page.locator("main .error")).to_be_visible()
    page.goto(f"{choreography.url}/#/device/no-such-device")
    expect(page.locator("main")).to_contain_text("No reading")
    page.goto(f"{choreography.url}/#/nowhere")
    expect(page.locator("main .error")).to_contain_text('no view called "nowhere"')
    page.goto(f"{choreography.url}/#/stream?room=no%20room!")  # the server's reason, not a silent table
    expect(page.locator("main .problem .error")).to_contain_text("room")
    expect(page.locator("#live")).to_have_text("live updates refused")
    # The live connection survives all of it, and the next view works.
    page.goto(f"{choreography.url}/#/stream")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    expect(page.locator(".stream-table tbody tr").first).to_be_visible()


def test_stopping_a_reactor_marks_it_offline_on_the_map(choreography, watched, screenshots):
    name = "door"
    page = watched.open("map")
    service = page.locator(f'.service-list li[data-service="{name}"]')
    expect(service).to_have_attribute("data-status", "online")
    process = choreography.processes.processes[name]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    try:
        expect(service).to_have_attribute("data-status", "offline")
        wait_for(lambda: page.evaluate(f"window.choreoConsole.cy.getElementById('svc:{name}').hasClass('offline')"),
                 10, "the offline node on the graph")
        shoot(page, screenshots, "map-offline")
    finally:
        choreography.start(name, ["reactor", name])
        choreography.wait_online(name)
    expect(service).to_have_attribute("data-status", "online")
