"""The `choreo` command: run a service, query the history, or run the whole demo."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .counters import CounterReports
from .errors import ChoreoError, ConfigError
from .manifest import Manifest, ServiceSpec
from .service import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, configure_logging, serve
from .settings import Settings, load_settings
from .state import StateStore
from .transport import ClientConfig, MqttTransport, Transport

if TYPE_CHECKING:
    from .announced import AnnouncedSchemas
    from .contract import Verdict

log = logging.getLogger("choreo")


class Consumer(Protocol):
    """A service run by _serve_consumer; one that knows how far behind it runs also has `lag_seconds`."""

    counts: Counter[str]

    async def run(self, stop: asyncio.Event) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="choreo", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    devices = commands.add_parser("devices", help="run the simulated device fleet")
    devices.add_argument("--fleet", help="fleet description (TOML); default: fleet.file, else the quick fleet")
    devices.add_argument("--count", type=int, help="quick fleet: devices of each kind (devices.count)")
    devices.add_argument("--kinds", help="quick fleet: comma-separated kinds, e.g. temperature,fan (devices.kinds)")
    devices.add_argument("--interval", type=float, help="quick fleet: seconds between readings (devices.interval)")

    commands.add_parser("ingest", help="turn device payloads into canonical facts")
    commands.add_parser("bridge", help="turn actuation requests for profile devices into their native commands")

    reactor = commands.add_parser("reactor", help="run one reactor")
    reactor.add_argument("name", help="the reactor to run, built-in or plugin (choreo reactors lists them)")
    reactor.add_argument("--partition", metavar="INDEX/COUNT",
                         help="run one of COUNT instances, each handling its share of the subjects (e.g. 0/2)")

    reactors = commands.add_parser("reactors", help="list the installed reactors: what each consumes and emits")
    reactors.add_argument("--format", choices=["table", "json"], default="table")

    sink = commands.add_parser("sink", help="store every event in InfluxDB")
    sink.add_argument("--instance", help="this replica's name, when several sinks share the load (e.g. 2)")

    history = commands.add_parser("history", help="print stored events (or, with --metric, readings) from InfluxDB")
    history.add_argument("--subject", help="only events about this device")
    history.add_argument("--type", help="only events of this type, e.g. alert.raised.v1; alert.raised: every version")
    history.add_argument("--site", help="only events or readings from this site")
    history.add_argument("--room", help="only events or readings from this room")
    history.add_argument("--metric", help="readings of this metric (e.g. temperature) instead of events")
    history.add_argument("--since", default="15m", help="from: a duration ago (30s, 15m, 2h, 7d) or an RFC 3339 time")
    history.add_argument("--until", help="to: a duration ago or an RFC 3339 time (default: now)")
    history.add_argument("--limit", type=int, default=1000, help="the newest N rows (default 1000)")
    history.add_argument("--format", choices=["table", "json", "csv"], default="table")

    trace = commands.add_parser("trace", help="print the causal tree of one chain of events")
    trace.add_argument("correlation_id", help="the chain's correlationid (its first event's id)")
    trace.add_argument("--since", default="7d", help="how far back to look (default 7d)")

    secrets = commands.add_parser("secrets", help="write the broker's password and TLS files and the services' env "
                                  "files for docker compose")
    secrets.add_argument("--out", default=".choreo/compose", help="folder for the files (default .choreo/compose)")
    secrets.add_argument("--fleet", help="the fleet whose devices get broker accounts (default: the one "
                         "docker-compose.yml runs, devices/fleets/demo.toml)")

    acl = commands.add_parser("acl", help="print the broker's ACL, generated from the services' declarations")
    acl.add_argument("--out", help="file to write (default: standard output)")

    chart = commands.add_parser("map", help="draw the live choreography from the services' manifests")
    chart.add_argument("--format", choices=["text", "mermaid"], default="text")

    asyncapi = commands.add_parser("asyncapi", help="write the AsyncAPI 3.0 document of the choreography")
    asyncapi.add_argument("--out", help="file to write (default: standard output)")
    asyncapi.add_argument("--broker", action="store_true",
                          help="also document the types services announce on the broker (choreo/schemas/#) and "
                               "the services whose manifests are there but not in this installation's code")

    console = commands.add_parser("console", help="serve the web console: the live map, stream, traces, devices, "
                                  "rejections and service counters (read-only)")
    console.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1; any other needs a token)")
    console.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    console.add_argument("--token-file", help="file holding the token that requests must present "
                         "(default: CHOREO_CONSOLE_TOKEN)")

    contract = commands.add_parser("contract", help="the recorded JSON Schema of every emitted event type")
    contract_commands = contract.add_subparsers(dest="contract_command", required=True, metavar="COMMAND")
    check = contract_commands.add_parser("check", help="refuse a breaking change to a recorded event type "
                                         "(docs/evolving-events.md)")
    check.add_argument("--update", action="store_true",
                       help="record new types and compatible changes (a breaking change is never recorded)")
    check.add_argument("--dir", help="the recorded schemas (default: contract/schemas in the repository)")
    check.add_argument("--broker", action="store_true",
                       help="also check the schemas the running services announce on the broker (choreo/schemas/#)")

    demo = commands.add_parser("demo", help="start a broker and InfluxDB and run the whole choreography")
    demo.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--state-dir", default=".choreo/demo", help="where the demo keeps its servers' state")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = _settings_with_flags(args)
    except ConfigError as exc:
        print(f"choreo {args.command}: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"choreo {args.command}: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG


def _settings_with_flags(args: argparse.Namespace) -> Settings:
    """Settings from the environment and choreo.toml, with command-line flags taking precedence."""
    return load_settings(_environment(args))


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.command == "devices":
        for key in ("count", "kinds", "interval"):
            if (value := getattr(args, key)) is not None:
                env[f"CHOREO_DEVICES_{key.upper()}"] = str(value)
                env.pop("CHOREO_FLEET_FILE", None)  # quick flags ask for the quick fleet
        if args.fleet:
            env["CHOREO_FLEET_FILE"] = args.fleet
    return env


def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    from devices.fleet import FleetRunner

    from .settings import load_fleet

    runner = FleetRunner(load_fleet(settings), settings)  # validates the fleet before any connection
    return serve("devices", runner.run)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from .fleet import Registry
    from .ingest.admission import Budgets
    from .ingest.documents import KeptDocuments
    from .ingest.service import IngestService
    from .profiles.base import MEMORY_LIMIT
    from .settings import load_fleet

    fleet = load_fleet(settings) if settings.fleet.file else None
    registry = Registry(fleet)
    budgets = Budgets(settings.ingest, fleet.devices() if fleet else ())  # refuses a bad budget before connecting
    # a dot no reactor's name has: the folder may be the reactors' too, where each keeps NAME.sqlite
    documents = KeptDocuments(Path(settings.ingest.state_dir) / "ingest.documents.sqlite", MEMORY_LIMIT)
    return _serve_consumer(settings, IngestService.spec, lambda transport: IngestService(
        transport, registry, budgets, settings.mqtt.gather, documents))


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from .bridge import BridgeService
    from .fleet import Registry
    from .settings import load_fleet

    registry = Registry(load_fleet(settings))  # the fleet is read before any connection
    return _serve_consumer(settings, BridgeService.spec, lambda transport: BridgeService(transport, registry))


def cmd_reactor(args: argparse.Namespace, settings: Settings) -> int:
    from .plugins import build_reactor
    from .reactor import ReactorRunner, spec_of

    reactor = build_reactor(args.name, settings)  # a built-in or a plugin, by its entry point
    partition = _partition(args.partition)
    suffix = f"-{partition[0]}-of-{partition[1]}" if partition else ""
    if partition and not reactor.partitionable:
        raise ConfigError(f"{reactor.name} keeps its state by something other than the subject: run one instance")
    store = StateStore(None if reactor.shared else Path(settings.reactors.state_dir) / f"{reactor.name}{suffix}.sqlite")
    spec = spec_of(reactor, partition)

    def reload() -> None:
        try:
            reactor.settings = build_reactor(args.name, load_settings(_environment(args))).settings
            log.info("%s reloaded its settings", reactor.name)
        except ConfigError as exc:
            log.error("%s kept its settings: %s", reactor.name, exc.message)

    client_id = f"{reactor.name}{suffix}" if not reactor.shared else f"{reactor.name}-{os.getpid()}"
    return _serve_consumer(settings, spec,
                           lambda transport: ReactorRunner(reactor, transport, store, partition=partition,
                                                           gather=settings.mqtt.gather),
                           reload=reload, client_id=client_id)


def _partition(text: str | None) -> tuple[int, int] | None:
    """`--partition 2/4`: this instance handles the subjects whose hash modulo 4 is 2 (counting from 0)."""
    if text is None:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--partition {text!r}: expected INDEX/COUNT, e.g. 0/2") from None
    if not 0 <= index < count:
        raise ConfigError(f"--partition {text!r}: INDEX must be 0 to COUNT-1")
    return index, count


def cmd_reactors(args: argparse.Namespace, settings: Settings) -> int:
    from .plugins import build_reactors, reactor_entry_points

    entry_points = reactor_entry_points()
    rows = [{"name": reactor.name, "description": reactor.description, "consumes": list(reactor.consumes),
             "emits": sorted(reactor.emits), "entry_point": entry_points[reactor.name]}
            for reactor in build_reactors(settings)]
    print(json.dumps(rows, indent=2) if args.format == "json" else _reactor_table(rows))
    return EXIT_OK


def _reactor_table(rows: list[dict]) -> str:
    header = {"name": "NAME", "description": "DESCRIPTION", "consumes": "CONSUMES", "emits": "EMITS",
              "entry_point": "ENTRY POINT"}
    cells = [header, *({key: ", ".join(v) if isinstance(v, list) else v for key, v in row.items()} for row in rows)]
    widths = {key: max(len(cell[key]) for cell in cells) for key in header}
    return "\n".join("  ".join(cell[key].ljust(widths[key]) for key in header).rstrip() for cell in cells)


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from .sink.service import Sink
    from .sink.spool import Spool
    from .sink.writers import writer_for
    from .topics import EVENTS_FILTER

    instance = args.instance
    if instance is not None:
        _check_instance(instance)
    if instance and not settings.sink.group:
        raise ConfigError("--instance runs one of several replicas: set sink.group (CHOREO_SINK_GROUP), "
                          "or each replica stores every event")
    name = f"sink-{instance}" if instance else "sink"
    spool = Spool(Path(settings.sink.spool_dir) / name, settings.sink.spool_max_bytes)
    writer = writer_for(settings.influx)
    spec = Sink.spec
    if settings.sink.group:  # replicas in one group split the stream (MQTT 5 shared subscription)
        spec = replace(spec, reads=tuple(f"$share/{settings.sink.group}/{f}" if f == EVENTS_FILTER else f
                                         for f in spec.reads), partition=instance)
    # A batch is acknowledged as a whole once stored; allowing two lets the next batch arrive
    # (and be parsed) while one is being written.
    receive_maximum = min(65535, max(settings.mqtt.receive_maximum, 2 * settings.influx.batch_size))
    return _serve_consumer(settings, spec, lambda transport: Sink(transport, writer, settings.influx, spool),
                           receive_maximum=receive_maximum, client_id=name)


def _check_instance(instance: str) -> None:
    """A replica's name becomes a topic level, a client id and a folder name."""
    from .errors import InvalidInput
    from .topics import COUNTERS_LEVEL, validate_id

    try:
        validate_id(instance, "--instance")
    except InvalidInput as exc:
        raise ConfigError(exc.message) from None
    if instance == COUNTERS_LEVEL:
        raise ConfigError(f"--instance {instance!r}: the name of the counters' topic level; choose another")


def _serve_consumer(settings: Settings, spec: ServiceSpec, build: Callable[[Transport], Consumer],
                    reload: Callable[[], None] | None = None, **client_options: object) -> int:
    """Connect as `spec.name`, announce the schemas of what it emits, subscribe, announce the
    manifest, consume until stopped, publishing the service's counters meanwhile."""

    async def main(stop: asyncio.Event) -> None:
        config = ClientConfig.from_settings(settings.mqtt, spec.name, will=spec.manifest(online=False),
                                            **client_options)
        async with MqttTransport(config) as transport:
            service = build(transport)
            await _announce_schemas(transport, spec)
            await transport.subscribe(*(f for f in spec.reads if f not in spec.documents), retained="new")
            if spec.documents:
                await transport.subscribe(*spec.documents, retained="always")
            transport.publish(spec.manifest(online=True))
            log.info("%s consuming %s", spec.name, ", ".join(spec.reads))
            reports = CounterReports(transport, spec, service.counts, lambda: getattr(service, "lag_seconds", None))
            try:
                async with reports.running():
                    await service.run(stop)
            finally:  # a clean disconnect sends no will: say offline ourselves, also when stopping on an error
                transport.publish(spec.manifest(online=False))
        log.info("%s stopped: %s %s", spec.name, dict(service.counts), transport.stats.as_dict())

    return serve(spec.name, main, reload)


async def _announce_schemas(transport: Transport, spec: ServiceSpec) -> None:
    """Announce, retained, the JSON Schema of each type the service emits (its models in code); the
    broker's ACL decides whether it may, and a refusal stops the service here (Refused)."""
    from .announced import schema_announcements
    from .events import EVENT_TYPES

    models = {event_type: EVENT_TYPES[event_type] for event_type in spec.emits if event_type in EVENT_TYPES}
    await asyncio.gather(*(transport.publish(message) for message in schema_announcements(spec.name, models)))


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from .history import HistoryQuery, format_rows
    from .sink.influx_v1 import InfluxV1

    query = HistoryQuery(subject=args.subject, type=args.type, site=args.site, room=args.room, metric=args.metric,
                         since=args.since, until=args.until, limit=args.limit)
    try:
        rows = query.rows(InfluxV1(settings.influx).query(query.influxql()))
    except ChoreoError as exc:
        print(f"choreo history: {exc.message}", file=sys.stderr)
        return EXIT_FAILED if exc.retryable else EXIT_CONFIG
    print(format_rows(rows, args.format, query.readings))
    return EXIT_OK


def cmd_trace(args: argparse.Namespace, settings: Settings) -> int:
    from .history import format_trace, rows_to_events, trace_query
    from .sink.influx_v1 import InfluxV1

    try:
        events = rows_to_events(InfluxV1(settings.influx).query(trace_query(args.correlation_id, args.since)))
    except ChoreoError as exc:
        print(f"choreo trace: {exc.message}", file=sys.stderr)
        return EXIT_FAILED if exc.retryable else EXIT_CONFIG
    if not events:
        print(f"choreo trace: no stored events with correlationid {args.correlation_id}", file=sys.stderr)
        return EXIT_FAILED
    print(format_trace(events))
    return EXIT_OK


def cmd_secrets(args: argparse.Namespace, settings: Settings) -> int:
    """Prints the paths it wrote, never what is in them."""
    from .compose import COMPOSE_FLEET, write_compose_secrets
    from .declarations import declarations
    from .fleet import Fleet

    # Not the fleet.file setting: the compose services set their own CHOREO_FLEET_FILE,
    # and the device password file must hold exactly the devices the compose fleet runs.
    fleet = args.fleet or str(COMPOSE_FLEET)
    device_accounts = Fleet.load(fleet).accounts()  # a device's account: docs/devices.md
    compose_settings = settings.model_copy(update={"fleet": settings.fleet.model_copy(update={"file": fleet})})
    try:
        paths = write_compose_secrets(Path(args.out), device_accounts, declarations(compose_settings))
    except ChoreoError as exc:
        print(f"choreo secrets: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK


def cmd_acl(args: argparse.Namespace, settings: Settings) -> int:
    from .acl import generated_acl, write_acl
    from .declarations import declarations

    declared = declarations(settings)
    if args.out:
        write_acl(Path(args.out), declared)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(generated_acl(declared), end="")
    return EXIT_OK


def cmd_map(args: argparse.Namespace, settings: Settings) -> int:
    from .choreography import Choreography

    try:
        manifests, schemas = _live_choreography(settings, "choreo-map")
    except ChoreoError as exc:
        print(f"choreo map: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    if not manifests:
        print("choreo map: no service manifests on choreo/services/+ (is anything running?)", file=sys.stderr)
        return EXIT_FAILED
    graph = Choreography.of(manifests, schemas)
    print(graph.mermaid() if args.format == "mermaid" else graph.text())
    return EXIT_OK


def _live_choreography(settings: Settings, who: str) -> tuple[list[Manifest], AnnouncedSchemas]:
    """The retained manifests and schema announcements on the broker, read by a short-lived client."""
    from .announced import AnnouncedSchemas
    from .choreography import collect_manifests

    schemas = AnnouncedSchemas()

    async def main() -> list[Manifest]:
        config = ClientConfig.from_settings(settings.mqtt, f"{who}-{os.getpid()}", clean_start=True, session_expiry=0)
        async with MqttTransport(config) as transport:
            return await collect_manifests(transport, schemas=schemas)

    return asyncio.run(main()), schemas


def cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    from .asyncapi import asyncapi_document

    specs, announced = service_specs(settings), None
    if args.broker:
        try:
            manifests, announced = _live_choreography(settings, "choreo-asyncapi")
        except ChoreoError as exc:
            print(f"choreo asyncapi: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
        in_code = {spec.name for spec in specs}
        specs += list({m.spec.name: m.spec for m in manifests if m.spec.name not in in_code}.values())
    text = json.dumps(asyncapi_document(specs, announced), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK


def service_specs(settings: Settings) -> list[ServiceSpec]:
    """Every service of the project, as declared in code (no broker needed)."""
    from .ingest.service import SPEC as INGEST
    from .plugins import build_reactors
    from .reactor import spec_of
    from .sink.service import SPEC as SINK

    return [INGEST, *(spec_of(reactor) for reactor in build_reactors(settings)), SINK]


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    from .console.server import run_console

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 0 to 65535")
    try:
        return run_console(settings, args.host, args.port, args.token_file)
    except ChoreoError as exc:
        if isinstance(exc, ConfigError):
            raise
        print(f"choreo console: {exc.message}", file=sys.stderr)
        return EXIT_FAILED


def cmd_contract(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 only if no recorded type changed incompatibly and every emitted type is recorded."""
    from .contract import SCHEMA_DIR, check, code_schemas, recorded_schemas, update

    directory = Path(args.dir) if args.dir else SCHEMA_DIR
    current = code_schemas(settings)
    if args.update:
        for path in update(current, directory)[1]:
            print(f"recorded {path}")
    recorded = recorded_schemas(directory)
    verdicts = {"": check(current, recorded)}
    if args.broker:
        try:
            verdicts.update(_announced_verdicts(settings, recorded))
        except ChoreoError as exc:
            print(f"choreo contract check: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
    failed = [service or "the code" for service, verdict in verdicts.items() if not verdict.passed]
    for service, verdict in verdicts.items():
        for line in verdict.lines():
            print(f"{service} announces {line}" if service else line, file=sys.stderr if failed else sys.stdout)
    if failed:
        print(f"choreo contract check: breaking or unrecorded changes in {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"choreo contract check: {len(current)} types compatible with {directory}"
          + (f", and what {len(verdicts) - 1} services announce on the broker" if args.broker else ""))
    return EXIT_OK


def _announced_verdicts(settings: Settings, recorded: dict[str, dict[str, Any]]) -> dict[str, Verdict]:
    """What the services announce on the broker now (choreo/schemas/#), checked against the records."""
    from .contract import check_announced

    schemas = _live_choreography(settings, "choreo-contract")[1]
    announced = [(t, a.service, a.schema) for t in schemas.types() for a in schemas.announcements(t)]
    return check_announced(announced, recorded)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    return run_demo(args.state_dir, args.duration)


COMMANDS = {
    "devices": cmd_devices,
    "ingest": cmd_ingest,
    "bridge": cmd_bridge,
    "reactor": cmd_reactor,
    "reactors": cmd_reactors,
    "sink": cmd_sink,
    "history": cmd_history,
    "trace": cmd_trace,
    "secrets": cmd_secrets,
    "acl": cmd_acl,
    "map": cmd_map,
    "asyncapi": cmd_asyncapi,
    "console": cmd_console,
    "demo": cmd_demo,
    "contract": cmd_contract,
}

if __name__ == "__main__":
    sys.exit(main())
