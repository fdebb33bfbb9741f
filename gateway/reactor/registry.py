"""The reactor API: a plain registry of what a reactor consumes, emits and does."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from ..events import Event, EventData, EventRejectedV1, register_event_type
from ..manifest import ServiceSpec
from ..topics import event_filter, validate_id
from ..upcast import can_downcast, downcast_data, older_versions

if TYPE_CHECKING:
    from .context import Context

D = TypeVar("D", bound=EventData)
E = TypeVar("E", bound=EventData)
Emission = EventData | tuple[str, EventData]  # data about the key's subject, or (subject, data)
Emissions = Iterable[Emission] | None
Handler = Callable[[Event[D], "Context"], Emissions]
TimerHandler = Callable[["Context"], Emissions]


class NoState(BaseModel):
    pass


class Reactor:
    """What a reactor consumes, emits and does; the runtime (ReactorRunner) does the rest."""

    def __init__(self, name: str, *, description: str = "", version: str = "1", state: type[BaseModel] = NoState,
                 settings: Any = None, drop_stale: bool = False, shared: bool = False,
                 partitionable: bool = True) -> None:
        self.name = validate_id(name, "reactor name")
        self.description = description
        self.version = version
        self.state_model = state
        self.settings = settings  # replaced on SIGHUP; handlers read it through ctx.settings
        self.drop_stale = drop_stale  # drop events older (by their source's sequence) than one already seen
        self.shared = shared  # stateless: replicas may split the stream through a shared subscription
        self.partitionable = partitionable  # state is keyed by subject, so instances may split the subjects
        self.handlers: dict[str, Handler[Any]] = {}
        self.timer_handlers: dict[str, TimerHandler] = {}
        self.emits: set[str] = set()
        self.emitted_models: dict[str, type[EventData]] = {}  # each emitted type's model: its announced schema
        self.handled_as: dict[str, str] = {}  # an older version -> the newer version whose handler receives it
        self.versions: dict[str, tuple[type[EventData], ...]] = {}  # a returned type -> the versions it goes out as

    @property
    def consumes(self) -> tuple[str, ...]:
        return (*self.handlers, *self.upcast)

    @property
    def upcast(self) -> dict[str, str]:
        """The older versions it receives upcast -> the version its handler takes (not those it handles as they are)."""
        return {older: newer for older, newer in self.handled_as.items() if older not in self.handlers}

    def route(self, event_type: str) -> tuple[Handler[Any], str] | None:
        """The handler of an event of this type, and the version it expects (an older one is upcast)."""
        if event_type in self.handlers:
            return self.handlers[event_type], event_type
        target = self.handled_as.get(event_type)
        return (self.handlers[target], target) if target is not None else None

    @overload
    def on(self, data_type: type[D], /, *,
           emits: Iterable[type[EventData]] = ()) -> Callable[[Handler[D]], Handler[D]]: ...

    @overload
    def on(self, first: type[D], second: type[E], /, *,
           emits: Iterable[type[EventData]] = ()) -> Callable[[Handler[D | E]], Handler[D | E]]: ...

    def on(self, *data_types: type[EventData], emits: Iterable[type[EventData]] = ()) -> Callable[[Any], Any]:
        """Register a handler for events whose data is of these types; it receives them typed."""
        def register(handler: Handler[Any]) -> Handler[Any]:
            for data_type in data_types:
                event_type = _known(data_type)
                if event_type in self.handlers:
                    raise ValueError(f"{self.name} already handles {event_type}")
                self.handlers[event_type] = handler
                for older in older_versions(event_type):  # older facts reach it upcast, unless handled apart
                    self.handled_as.setdefault(older, event_type)
            self._declare(emits)
            return handler
        return register

    def timer(self, name: str, *, emits: Iterable[type[EventData]] = ()) -> Callable[[TimerHandler], TimerHandler]:
        """Register what happens when a timer started with ctx.start_timer(name, ...) runs out."""
        def register(handler: TimerHandler) -> TimerHandler:
            self.timer_handlers[name] = handler
            self._declare(emits)
            return handler
        return register

    def emit_versions(self, data_type: type[EventData], versions: Iterable[type[EventData]]) -> None:
        """What handlers return as `data_type` goes out as each of `versions`, the older ones derived by
        the registered downcasters: one fact, one id, in several versions (a producer's migration window)."""
        returned, chosen = _known(data_type), tuple(versions)
        for version in chosen:
            if not can_downcast(returned, _known(version)):
                raise ValueError(f"{self.name}: no downcaster from {returned} to {version.event_type}")
        self.versions[returned] = chosen
        self.emits.discard(returned)
        self.emitted_models.pop(returned, None)
        self._declare(chosen)

    def outgoing(self, data: EventData) -> list[EventData]:
        """`data` in each version it goes out as."""
        versions = self.versions.get(data.event_type)
        if versions is None:
            return [data]
        return [data if version is type(data) else downcast_data(data, version.event_type) for version in versions]

    def _declare(self, emits: Iterable[type[EventData]]) -> None:
        for data_type in emits:
            event_type = _known(data_type)
            if event_type in self.versions and data_type not in self.versions[event_type]:
                continue  # it goes out only as the versions emit_versions() chose
            self.emits.add(event_type)
            self.emitted_models[event_type] = data_type


def _known(data_type: type[EventData]) -> str:
    """The type's name; a new type (a plugin's fact) becomes known in this process."""
    return register_event_type(data_type)


def spec_of(reactor: Reactor, partition: tuple[int, int] | None = None) -> ServiceSpec:
    reads = tuple(event_filter(t) for t in reactor.consumes)
    if reactor.shared:
        reads = tuple(f"$share/{reactor.name}/{topic_filter}" for topic_filter in reads)
    emits = tuple(sorted({*reactor.emits, EventRejectedV1.event_type}))
    label = f"{partition[0]}-of-{partition[1]}" if partition else None
    return ServiceSpec(reactor.name, reads, reactor.consumes, emits, reactor.version, partition=label,
                       upcasts=tuple(sorted(reactor.upcast.items())))
