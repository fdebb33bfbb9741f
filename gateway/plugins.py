"""Reactor plugins: the one place that reads the `choreo.reactors` entry points.

A reactor joins the choreography by registering `NAME = "package.module:build"` in that group,
where `build(settings: Settings) -> Reactor`; the built-ins register the same way (pyproject.toml).
Its own settings are read with `settings.reactor(NAME, Model)` from `[reactors.NAME]` in
choreo.toml and from `CHOREO_REACTORS_<NAME>_<KEY>`.
"""
from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .reactor import Reactor
    from .settings import Settings

ENTRY_POINT_GROUP = "choreo.reactors"


def reactor_names() -> list[str]:
    """The installed reactors' names, sorted, without importing their modules."""
    return sorted({entry_point.name for entry_point in entry_points(group=ENTRY_POINT_GROUP)})


def reactor_entry_points() -> dict[str, str]:
    """Each installed reactor's entry point (`package.module:build`), by name."""
    return {name: _entry_point(name).value for name in reactor_names()}


def build_reactor(name: str, settings: Settings) -> Reactor:
    """Load the reactor's entry point and build it; ConfigError says what is wrong with the plugin."""
    from .reactor import Reactor  # the runtime imports the settings, which read the names above

    entry_point = _entry_point(name)
    reactor = _load(entry_point)(settings)
    if not isinstance(reactor, Reactor):
        raise ConfigError(f"reactor {name!r}: {_label(entry_point)} returned {type(reactor).__name__}, not a Reactor")
    if reactor.name != name:
        raise ConfigError(f"reactor {name!r}: {_label(entry_point)} built a reactor named {reactor.name!r}; "
                          "the entry point's name must be the reactor's name")
    return reactor


def build_reactors(settings: Settings) -> list[Reactor]:
    """Every installed reactor, built, sorted by name."""
    return [build_reactor(name, settings) for name in reactor_names()]


def _entry_point(name: str) -> EntryPoint:
    found = {entry_point.value: entry_point for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=name)}
    if not found:
        raise ConfigError(f"unknown reactor {name!r}; installed: {', '.join(reactor_names()) or 'none'}")
    if len(found) > 1:
        raise ConfigError(f"reactor {name!r} is registered more than once in {ENTRY_POINT_GROUP}: "
                          f"{', '.join(sorted(found))}; uninstall all but one")
    return next(iter(found.values()))


def _load(entry_point: EntryPoint) -> Callable[[Settings], object]:
    try:
        build = entry_point.load()
    except Exception as exc:  # any error importing a plugin's module is that plugin's fault, not ours
        raise ConfigError(f"reactor {entry_point.name!r}: {_label(entry_point)} failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not callable(build):
        raise ConfigError(f"reactor {entry_point.name!r}: {_label(entry_point)} is a {type(build).__name__}, "
                          "not a build(settings) function")
    return build


def _label(entry_point: EntryPoint) -> str:
    return f"entry point {entry_point.name} = {entry_point.value!r} ({ENTRY_POINT_GROUP})"
