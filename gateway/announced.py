"""Event types known from announced JSON Schemas, for consumers that do not know a type in code.

Every service announces, retained, the JSON Schema of the `data` of each type it emits on its
own topic `choreo/schemas/{type}/{service}`; the broker's ACL lets only a service that declares
a type write there, so the broker, not the announcement, decides who may announce a type.
docs/contract.md, "Types from outside the gateway", says how consumers use them.

A schema is untrusted input: it must be a Draft 2020-12 JSON Schema of at most 64 KiB, nested at
most 64 levels, with local references only (`#/...`: nothing is ever fetched), no `$id` below the
root, and no pattern that repeats a repeated group (`(a+)+`, catastrophic backtracking).

Two different schemas for one type (from two services) are a conflict: logged once, counted and
listed in `conflicts`. An event of that type must then satisfy the schema of its own source's
service (`reactor/NAME` or `service/NAME`); any other event of it is rejected naming the conflict.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic_core import from_json
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from .errors import InvalidInput
from .events import EventData
from .topics import schema_topic, schema_topic_levels
from .transport import Message

log = logging.getLogger(__name__)

MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 64
MAX_ANNOUNCEMENTS = 512  # (type, service) pairs one consumer keeps
MAX_REFUSED = 100  # refused announcements kept for reports
DRAFT = "https://json-schema.org/draft/2020-12/schema"
REFERENCES = ("$ref", "$dynamicRef")
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)[*+{]")
_NO_RETRIEVAL: Registry[Any] = Registry()  # no `retrieve`: a reference outside the schema is never fetched
_REFERRING_SOURCES = ("reactor/", "service/")


def schema_announcements(service: str, models: Mapping[str, type[EventData]]) -> list[Message]:
    """The retained QoS 1 messages announcing the JSON Schema of each type `service` emits."""
    return [Message(schema_topic(event_type, service),
                    json.dumps(model.model_json_schema(mode="validation")).encode(), qos=1, retain=True)
            for event_type, model in sorted(models.items())]


def parse_schema(payload: bytes) -> dict[str, Any]:
    """The JSON Schema in `payload`, if it is fit to validate untrusted data; else InvalidInput saying why."""
    if len(payload) > MAX_SCHEMA_BYTES:
        raise InvalidInput(f"schema of {len(payload):,} bytes: at most {MAX_SCHEMA_BYTES:,}")
    try:  # pydantic's parser: nesting beyond its limit is a ValueError, not a RecursionError deep in json
        schema = from_json(payload, allow_inf_nan=False)
    except ValueError as exc:
        raise InvalidInput(f"schema is not JSON: {str(exc)[:200]}") from None
    if not isinstance(schema, dict):
        raise InvalidInput("schema must be a JSON object")
    if schema.get("$schema", DRAFT) != DRAFT:
        raise InvalidInput(f"$schema {str(schema['$schema'])[:100]!r}: only Draft 2020-12 ({DRAFT}) is supported")
    references = _walk(schema)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(f"not a valid JSON Schema (Draft 2020-12): {_at(exc.absolute_path)}{exc.message[:200]}") \
            from None
    resolver = _NO_RETRIEVAL.resolver_with_root(DRAFT202012.create_resource(schema))
    for reference in references:
        try:
            resolver.lookup(reference)
        except Unresolvable:
            raise InvalidInput(f"$ref {reference[:100]!r} points at nothing in the schema") from None
    return schema


def _walk(schema: dict[str, Any]) -> list[str]:
    """The schema's references, once each is known to be local; InvalidInput for anything refused."""
    references: list[str] = []
    stack: list[tuple[Any, int]] = [(schema, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"schema nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            stack += [(child, depth + 1) for child in node]
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key in REFERENCES and isinstance(value, str):
                references.append(_local(key, value))
            elif key == "$id" and depth > 0 and isinstance(value, str):
                raise InvalidInput("$id below the schema's root: it would change what a local reference means")
            elif key == "pattern" and isinstance(value, str):
                _tame(value)
            elif key == "patternProperties" and isinstance(value, dict):
                for pattern in value:
                    _tame(pattern)
            stack.append((value, depth + 1))
    return references


def _local(keyword: str, reference: str) -> str:
    if reference != "#" and not reference.startswith("#/"):
        raise InvalidInput(f"{keyword} {reference[:100]!r}: only local references (#/...) are allowed; "
                           "nothing is fetched")
    return reference


def _tame(pattern: str) -> None:
    if _NESTED_QUANTIFIER.search(pattern):
        raise InvalidInput(f"pattern {pattern[:100]!r} repeats a repeated group (catastrophic backtracking)")


def _at(path: Iterable[str | int]) -> str:
    where = "/".join(str(part) for part in path)
    return f"at {where}: " if where else ""


@dataclass(frozen=True)
class Announcement:
    """One service's schema for one type."""

    event_type: str
    service: str
    schema: dict[str, Any]

    @property
    def canonical(self) -> str:
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":"))

    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.schema, registry=_NO_RETRIEVAL)


class AnnouncedSchemas:
    """The schemas announced on `choreo/schemas/#`, and the validators of the types they describe.

    With `memory`, a file that keeps them across the consumer's restarts (the sink's, next to its
    spool): read at start, replaced atomically at every change.
    """

    def __init__(self, memory: Path | None = None, counts: Counter[str] | None = None) -> None:
        self.memory = memory
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.refused: dict[str, str] = {}  # topic -> why its announcement was refused (the latest few)
        self._by_type: dict[str, dict[str, Announcement]] = {}
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}
        self._reported: set[tuple[str, tuple[str, ...]]] = set()
        if memory is not None:
            self._recall(memory)

    # -- taking announcements --------------------------------------------------------------
    def offer(self, message: Message) -> Announcement | None:
        """Take one message of `choreo/schemas/#`: an announcement, or with an empty payload its
        withdrawal (None). InvalidInput, counted and kept in `refused`, for anything else."""
        try:
            event_type, service = schema_topic_levels(message.topic)
            if not message.payload:
                self.withdraw(event_type, service)
                return None
            return self.add(event_type, service, parse_schema(message.payload))
        except InvalidInput as exc:
            self._refuse(message.topic, exc.message)
            raise InvalidInput(f"schema announcement refused: {exc.message}", topic=message.topic) from None

    def add(self, event_type: str, service: str, schema: dict[str, Any]) -> Announcement:
        """Keep `service`'s (already parsed) schema for `event_type`, replacing its earlier one."""
        announcements = self._by_type.setdefault(event_type, {})
        if service not in announcements and self.size >= MAX_ANNOUNCEMENTS:
            raise InvalidInput(f"already {MAX_ANNOUNCEMENTS} announced schemas; no room for another")
        announcement = Announcement(event_type, service, schema)
        changed = announcements.get(service) != announcement
        announcements[service] = announcement
        self._validators.pop((event_type, service), None)
        if changed:
            self.counts["schemas_announced"] += 1
            self._report_conflict(event_type)
            self._save()
        return announcement

    def withdraw(self, event_type: str, service: str) -> None:
        """Forget `service`'s schema for `event_type` (its retained announcement was cleared)."""
        if self._by_type.get(event_type, {}).pop(service, None) is None:
            return
        if not self._by_type[event_type]:
            del self._by_type[event_type]
        self._validators.pop((event_type, service), None)
        self.counts["schemas_withdrawn"] += 1
        log.info("%s withdrew its schema of %s", service, event_type)
        self._save()

    def _refuse(self, topic: str, reason: str) -> None:
        self.counts["schemas_refused"] += 1
        self.refused.pop(topic, None)
        self.refused[topic] = reason
        while len(self.refused) > MAX_REFUSED:
            del self.refused[next(iter(self.refused))]
        log.warning("refused the schema announcement on %s: %s", topic[:128], reason)

    def _report_conflict(self, event_type: str) -> None:
        services = self.conflicts.get(event_type)
        if services is None or (event_type, services) in self._reported:
            return
        self._reported.add((event_type, services))
        self.counts["schema_conflicts"] += 1
        log.warning("conflicting schemas for %s, announced by %s: an event of it must satisfy the schema of "
                    "its own source's service", event_type, ", ".join(services))

    # -- what is known -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        return sum(len(announcements) for announcements in self._by_type.values())

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    def types(self) -> list[str]:
        return sorted(self._by_type)

    def announcements(self, event_type: str) -> list[Announcement]:
        """Who announced a schema for `event_type`, by service name."""
        return [self._by_type[event_type][s] for s in sorted(self._by_type.get(event_type, {}))]

    @property
    def conflicts(self) -> dict[str, tuple[str, ...]]:
        """Each type announced with different schemas, and the services that announced it."""
        found = {}
        for event_type, announcements in sorted(self._by_type.items()):
            if len({a.canonical for a in announcements.values()}) > 1:
                found[event_type] = tuple(sorted(announcements))
        return found

    # -- validating ----------------------------------------------------------------------------
    def validator(self, event_type: str, source: str | None = None) -> Draft202012Validator:
        """The validator of `event_type`'s data for an event from `source`; InvalidInput if there is none."""
        announcements = self._by_type.get(event_type)
        if not announcements:
            raise InvalidInput(f"unknown event type {event_type!r}: no service announces it")
        service = _service_of(source)
        if event_type in self.conflicts:
            if service not in announcements:
                raise InvalidInput(f"event type {event_type!r} has conflicting schemas, announced by "
                                   f"{', '.join(sorted(announcements))}; its source {source!r} is none of them")
        elif service not in announcements:
            service = next(iter(announcements))  # one schema, whoever announced it
        key = (event_type, service)
        if key not in self._validators:
            self._validators[key] = announcements[service].validator()
        return self._validators[key]

    def check(self, event_type: str, source: str, data: Mapping[str, Any]) -> None:
        """InvalidInput naming the JSON path and the reason unless `data` satisfies the announced schema."""
        validator = self.validator(event_type, source)
        try:
            error = best_match(validator.iter_errors(data))
        except RecursionError:
            raise InvalidInput("data: nested too deeply to validate") from None
        except Unresolvable as exc:  # parse_schema resolved every reference; kept as a guard
            raise InvalidInput(f"data: the announced schema of {event_type} has a broken reference: {exc}") from None
        if error is not None:
            path = ".".join(["data", *(str(part) for part in error.absolute_path)])
            raise InvalidInput(f"{path}: {error.message[:300]}")

    # -- memory across restarts ---------------------------------------------------------------
    def _save(self) -> None:
        if self.memory is None:
            return
        document = {"announcements": [{"type": a.event_type, "service": a.service, "schema": a.schema}
                                      for event_type in self.types() for a in self.announcements(event_type)]}
        temporary = self.memory.with_name(self.memory.name + ".tmp")
        with open(temporary, "w") as file:
            json.dump(document, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.memory)

    def _recall(self, memory: Path) -> None:
        """Take back the schemas kept in `memory`; what no longer passes the checks is logged and left out."""
        try:
            entries = from_json(memory.read_bytes())["announcements"]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.counts["schemas_refused"] += 1
            log.error("the announced schemas kept in %s are unreadable (%s); starting without them", memory, exc)
            return
        saved, self.memory = self.memory, None  # no rewrite while reading it back
        try:
            for entry in entries:
                self._recall_one(entry)
        finally:
            self.memory = saved
        log.info("recalled %d announced schemas from %s", self.size, memory)

    def _recall_one(self, entry: Any) -> None:
        try:
            message = Message(schema_topic(entry["type"], entry["service"]), json.dumps(entry["schema"]).encode())
        except (InvalidInput, KeyError, TypeError) as exc:
            self.counts["schemas_refused"] += 1
            log.error("left out a kept schema: %s", getattr(exc, "message", repr(exc)))
            return
        try:
            self.offer(message)
        except InvalidInput:
            pass  # counted and logged by offer


def _service_of(source: str | None) -> str | None:
    """The service name of a `reactor/NAME` or `service/NAME` source."""
    if source is None or not source.startswith(_REFERRING_SOURCES):
        return None
    return source.split("/", 1)[1]
