"""Whether a new JSON Schema of an event's `data` still accepts everything the recorded one accepted.

A change is compatible when every `data` valid under the recorded schema stays valid under the
new one: facts already stored, queued for a consumer, or published by a producer not yet upgraded
still decode. So a new optional field, a relaxed bound or a field no longer required pass; a
field removed or renamed, a type changed, a field made required, or values narrowed (enum,
const, pattern, format, minimum/maximum, lengths, item counts, extra properties) break.

Both schemas are the JSON Schema (Draft 2020-12) that pydantic writes and that services announce:
objects with `properties`/`required`, `anyOf` for optional fields, `$ref` into the schema's own
`$defs`. What this module cannot prove compatible (a pattern that changed) it calls breaking.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["additive", "relaxed", "breaking"]
Schema = Mapping[str, Any]

# a bound that narrows when it grows, and one that narrows when it shrinks
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT_KEYWORDS = ("pattern", "format", "multipleOf")
MAX_DEPTH = 64


@dataclass(frozen=True)
class Change:
    """One difference: where (`data.above_seconds`), of which kind, and what it is."""

    path: str
    kind: Kind
    what: str

    @property
    def breaking(self) -> bool:
        return self.kind == "breaking"


def changes(recorded: Schema, current: Schema) -> list[Change]:
    """Every difference between the recorded schema of a type and the current one, breaking or not."""
    return list(_compare(_Side(recorded, recorded), _Side(current, current), "data", 0))


@dataclass(frozen=True)
class _Side:
    """A node of one schema, with its root to resolve `$ref: #/$defs/...` against."""

    node: Schema
    root: Schema

    def at(self, node: Any) -> _Side:
        return _Side(self._resolve(node if isinstance(node, Mapping) else {}), self.root)

    def _resolve(self, node: Schema) -> Schema:
        for _ in range(MAX_DEPTH):  # a chain of references that never ends is no schema
            reference = node.get("$ref")
            if not isinstance(reference, str) or not reference.startswith("#/"):
                return node
            target: Any = self.root
            for part in reference[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
        return node

    @property
    def alternatives(self) -> list[_Side]:
        """`anyOf`/`oneOf` split into its branches; any other node is its own single branch."""
        branches = self.node.get("anyOf") or self.node.get("oneOf")
        if not isinstance(branches, list):
            return [self]
        common = {k: v for k, v in self.node.items() if k not in ("anyOf", "oneOf")}
        return [self.at({**common, **branch}) for branch in branches if isinstance(branch, Mapping)]

    @property
    def types(self) -> frozenset[str]:
        declared = self.node.get("type")
        if isinstance(declared, str):
            return frozenset({declared})
        if isinstance(declared, list):
            return frozenset(t for t in declared if isinstance(t, str))
        if "const" in self.node or "enum" in self.node:
            return frozenset(_json_type(v) for v in self.values() or ())
        return frozenset()  # any type

    def values(self) -> list[Any] | None:
        if "const" in self.node:
            return [self.node["const"]]
        values = self.node.get("enum")
        return list(values) if isinstance(values, list) else None


def _compare(old: _Side, new: _Side, path: str, depth: int) -> Iterator[Change]:
    if depth > MAX_DEPTH:
        return
    old_branches, new_branches = old.alternatives, new.alternatives
    if len(old_branches) > 1 or len(new_branches) > 1:
        yield from _compare_branches(old_branches, new_branches, path, depth)
        return
    if new.types and not old.types <= new.types | _widened(new.types):
        was = " or ".join(sorted(old.types)) or "any type"
        yield Change(path, "breaking", f"type changed from {was} to {' or '.join(sorted(new.types))}")
        return
    yield from _compare_values(old, new, path)
    yield from _compare_bounds(old.node, new.node, path)
    if "object" in old.types or "properties" in old.node:
        yield from _compare_objects(old, new, path, depth)
    if "items" in old.node or "items" in new.node:
        yield from _compare(old.at(old.node.get("items", {})), new.at(new.node.get("items", {})), f"{path}[]",
                            depth + 1)


def _widened(types: frozenset[str]) -> frozenset[str]:
    """`number` accepts every `integer` too."""
    return frozenset({"integer"}) if "number" in types else frozenset()


def _compare_branches(old: list[_Side], new: list[_Side], path: str, depth: int) -> Iterator[Change]:
    """Every old branch must live on in a new branch of the same type (e.g. `string | null`)."""
    for branch in old:
        match = next((b for b in new if b.types & branch.types or not b.types), None)
        if match is None:
            kinds = " or ".join(sorted(branch.types)) or "any type"
            yield Change(path, "breaking", f"no longer accepts {kinds}")
        else:
            yield from _compare(branch, match, path, depth + 1)
    for branch in new:
        if not any(b.types & branch.types for b in old):
            yield Change(path, "relaxed", f"also accepts {' or '.join(sorted(branch.types)) or 'any type'}")


def _compare_values(old: _Side, new: _Side, path: str) -> Iterator[Change]:
    old_values, new_values = old.values(), new.values()
    if new_values is None:
        return
    lost = [v for v in old_values or () if v not in new_values]
    if old_values is None:
        yield Change(path, "breaking", f"values narrowed to {new_values}")
    elif lost:
        yield Change(path, "breaking", f"values narrowed: {lost} no longer allowed")
    elif len(new_values) > len(old_values):
        yield Change(path, "relaxed", f"values widened to {new_values}")


def _compare_bounds(old: Schema, new: Schema, path: str) -> Iterator[Change]:
    for keyword in LOWER_BOUNDS + UPPER_BOUNDS:
        before, after = old.get(keyword), new.get(keyword)
        if after is None or before == after:
            if before is not None and after is None:
                yield Change(path, "relaxed", f"{keyword} {before} removed")
            continue
        narrower = before is None or (after > before if keyword in LOWER_BOUNDS else after < before)
        yield Change(path, "breaking" if narrower else "relaxed",
                     f"{keyword} {'added' if before is None else f'changed from {before}'} to {after}"
                     if narrower else f"{keyword} relaxed from {before} to {after}")
    for keyword in EXACT_KEYWORDS:
        before, after = old.get(keyword), new.get(keyword)
        if after is not None and before != after:
            yield Change(path, "breaking", f"{keyword} {'added' if before is None else f'changed from {before!r}'}"
                                           f" to {after!r}")
        elif before is not None and after is None:
            yield Change(path, "relaxed", f"{keyword} {before!r} removed")


def _compare_objects(old: _Side, new: _Side, path: str, depth: int) -> Iterator[Change]:
    old_fields = old.node.get("properties") or {}
    new_fields = new.node.get("properties") or {}
    old_required = set(old.node.get("required") or ())
    new_required = set(new.node.get("required") or ())
    closed = new.node.get("additionalProperties") is False
    if closed and old.node.get("additionalProperties") is not False:
        yield Change(path, "breaking", "no longer accepts fields it does not name (additionalProperties: false)")
    added = [name for name in new_fields if name not in old_fields]
    for name in old_fields:
        if name not in new_fields:
            renamed = f" (renamed to {', '.join(added)}?)" if added else ""
            yield Change(f"{path}.{name}", "breaking", f"field removed{renamed}")
            continue
        if name in new_required and name not in old_required:
            yield Change(f"{path}.{name}", "breaking", "field made required")
        elif name in old_required and name not in new_required:
            yield Change(f"{path}.{name}", "relaxed", "field no longer required")
        yield from _compare(old.at(old_fields[name]), new.at(new_fields[name]), f"{path}.{name}", depth + 1)
    for name in added:
        if name in new_required:
            yield Change(f"{path}.{name}", "breaking", "new required field")
        else:
            yield Change(f"{path}.{name}", "additive", "new optional field")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"
