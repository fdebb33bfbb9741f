"""The recorded contract: one JSON Schema file per event type and version, kept in the repository.

`contract/schemas/{type}.json` holds the schema of the `data` of every type the project's services
emit: the built-in models, what each installed reactor announces for the types it emits, and the
schemas a services file declares. check() compares the code with the files; update() records new
types and compatible changes, and refuses to overwrite a file with a breaking change.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..events import BUILT_IN_TYPES
from ..topics import EVENT_TYPE_PATTERN
from ..upcast import family
from .compatibility import Change, changes

if TYPE_CHECKING:
    from ..settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "contract" / "schemas"
UPDATE_HINT = "choreo contract check --update"


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON Schema exactly as services announce it (gateway/announced.py)."""
    return model.model_json_schema(mode="validation")


def code_schemas(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The schema of every type the project's services emit, by type: the built-ins, and with `settings`
    what the installed reactors announce and the services file declares."""
    schemas = announced_schemas(settings) if settings is not None else {}
    schemas.update({event_type: schema_of(model) for event_type, model in BUILT_IN_TYPES.items()})
    return dict(sorted(schemas.items()))


def announced_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the installed reactors announce for the types they emit, and what the services file declares."""
    from ..declarations import load_services_file
    from ..plugins import build_reactors

    schemas = {event_type: schema_of(model) for reactor in build_reactors(settings)
               for event_type, model in reactor.emitted_models.items()}
    if settings.services.file:
        for declaration in load_services_file(Path(settings.services.file)):
            schemas.update({event_type: dict(schema) for event_type, schema in declaration.schemas.items()})
    return schemas


def path_of(event_type: str, directory: Path = SCHEMA_DIR) -> Path:
    if not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise ValueError(f"{event_type!r} is not an event type")
    return directory / f"{event_type}.json"


def recorded_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    return {path.name.removesuffix(".json"): json.loads(path.read_text())
            for path in sorted(directory.glob("*.json"))}


@dataclass
class Verdict:
    """What check() found, type by type."""

    changes: dict[str, list[Change]] = field(default_factory=dict)  # recorded types whose schema changed
    unrecorded: list[str] = field(default_factory=list)  # in code, no file yet
    retired: list[str] = field(default_factory=list)  # a file, no longer emitted by anyone

    @property
    def breaking(self) -> dict[str, list[Change]]:
        found = {t: [c for c in found if c.breaking] for t, found in self.changes.items()}
        return {t: found for t, found in found.items() if found}

    @property
    def passed(self) -> bool:
        return not self.breaking and not self.unrecorded

    def lines(self) -> list[str]:
        """One line per finding, the failures first, each naming the type and the field."""
        lines = [f"{event_type}: {change.path}: {change.what}: breaking; keep {event_type} as it is and add "
                 f"{next_version(event_type)} with an upcaster (docs/evolving-events.md)"
                 for event_type, found in self.breaking.items() for change in found]
        lines += [f"{event_type}: no recorded schema; record it with `{UPDATE_HINT}`" for event_type in self.unrecorded]
        lines += [f"{event_type}: {change.path}: {change.what}: {change.kind}, compatible; record it with "
                  f"`{UPDATE_HINT}`" for event_type, found in self.changes.items() for change in found
                  if not change.breaking]
        lines += [f"{event_type}: recorded, but no service emits it any more (its stored facts remain)"
                  for event_type in self.retired]
        return lines


def check(current: Mapping[str, Mapping[str, Any]], recorded: Mapping[str, Mapping[str, Any]]) -> Verdict:
    """Compare the code's schemas (`current`) with the recorded ones, type by type."""
    verdict = Verdict()
    for event_type, schema in current.items():
        if event_type not in recorded:
            verdict.unrecorded.append(event_type)
        elif found := changes(recorded[event_type], schema):
            verdict.changes[event_type] = found
    verdict.retired = [event_type for event_type in recorded if event_type not in current]
    return verdict


def check_announced(announced: Iterable[tuple[str, str, Mapping[str, Any]]],
                    recorded: Mapping[str, Mapping[str, Any]]) -> dict[str, Verdict]:
    """What services announce (type, service, schema), checked by service against the recorded schemas.

    Only recorded types are checked: a type recorded nowhere here belongs to its announcer's contract.
    """
    by_service: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for event_type, service, schema in announced:
        if event_type in recorded:
            by_service[service][event_type] = schema
    return {service: check(schemas, {t: recorded[t] for t in schemas})
            for service, schemas in sorted(by_service.items())}


def update(current: Mapping[str, Mapping[str, Any]], directory: Path = SCHEMA_DIR) -> tuple[Verdict, list[Path]]:
    """Record new types and compatible changes; a type with a breaking change keeps its file."""
    verdict = check(current, recorded_schemas(directory))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in (*verdict.unrecorded, *verdict.changes):
        if event_type not in verdict.breaking:
            path = path_of(event_type, directory)
            path.write_text(json.dumps(current[event_type], indent=2, sort_keys=True) + "\n")
            written.append(path)
    return verdict, written


def next_version(event_type: str) -> str:
    """`alert.raised.v1` -> `alert.raised.v2`."""
    name, version = family(event_type)
    return f"{name}.v{version + 1}"
