"""What every stage of a gadget run is: a name, a priority, declared needs, a lifecycle.

A :class:`Stage` is one per-run step (IG's operator instance). The pipeline orders stages
by :attr:`~Stage.priority`, calls every :meth:`~Stage.pre_start` (plan and validate:
nothing touches the kernel yet), then every :meth:`~Stage.start`; :meth:`~Stage.stop`
and :meth:`~Stage.close` run in the reverse order. An :class:`EventStage` also sees the
events: a :class:`Batch` of one data source in, batches out.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.bpf.objmodel import ENRICHMENT_PREFIXES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from gadgetsmith.runtime.events.enrichment import Enrichment
    from gadgetsmith.runtime.pipeline.context import DataSource, RunContext

Event = dict[str, Any]

# the default pipeline, in order (IG's priorities are ints too; gaps leave room)
SOURCE = 100
CONTAINERS = 150
OBJECT = 200
PARAMS = 300
LOAD = 400
READERS = 500
ATTACH = 600
DECODE = 700
FORMATTERS = 750
USTACK = 760
ENRICH = 800
PROCESSORS = 850
FILTER = 900
# the slot of a WASM module (a stage that may change fields and emit events): before the
# filter, as in IG, where a module's callbacks (priority 0 by default) run before the
# filter's (9000): --filter, --sort and the columns see the fields a module adds
WASM = 870
SORT = 1100


@dataclass(frozen=True)
class Needs:
    """What an event stage declares about the events it sees.

    ``fields``: the fields it reads (None: any field). ``enrichment``: it reads the
    container fields, so the pipeline merges them into the events before this stage
    (otherwise they travel beside the events, see :class:`Batch`). ``changes``: it changes
    or adds fields, or emits events of another data source."""

    fields: frozenset[str] | None = frozenset()
    enrichment: bool = False
    changes: bool = False

    @classmethod
    def reading(cls, fields: frozenset[str] | set[str] | None, changes: bool = False) -> Needs:
        """Needs of a stage reading ``fields``: enrichment when one of them is a container
        field (or when it may read any field)."""
        fields = None if fields is None else frozenset(fields)
        enrichment = fields is None or any(f.startswith(ENRICHMENT_PREFIXES) for f in fields)
        return cls(fields, enrichment, changes)


NOTHING = Needs()


class Batch:
    """Events of one data source, in the order read.

    ``extras``, when not None, is parallel to ``events``: each event's container
    :class:`~gadgetsmith.runtime.events.enrichment.Enrichment`, not yet merged into it
    (the JSON printer splices its pre-rendered text instead). A batch of an array data
    source (iterator, map iterator) is one complete snapshot.

    A batch the decode stage made (:meth:`of_records`) decodes its records the first time
    :attr:`events` is read; until then :attr:`records` holds them, so a consumer can tell
    that no stage looked at (or changed) the events and print the records directly
    (``gadget run -o json``, :mod:`~gadgetsmith.runtime.events.jsonline`)."""

    __slots__ = ("_events", "datasource", "extras", "records")

    def __init__(self, datasource: DataSource, events: list[Event],
                 extras: list[Enrichment] | None = None) -> None:
        self.datasource = datasource
        self._events: list[Event] | None = events
        self.extras = extras
        #: the raw records, while the events were not decoded yet
        self.records: list[bytes] | None = None

    @classmethod
    def of_records(cls, datasource: DataSource, records: list[bytes]) -> Batch:
        """A batch of ``records`` of ``datasource`` (it has a decoder), decoded when read."""
        batch = cls(datasource, [])
        batch._events, batch.records = None, records
        return batch

    @property
    def events(self) -> list[Event]:
        if self._events is None:
            assert self.datasource.decoder is not None and self.records is not None
            self._events = self.datasource.decoder.decode_many(self.records)
            self.records = None
        return self._events

    @events.setter
    def events(self, events: list[Event]) -> None:
        self._events, self.records = events, None

    def values(self, name: str) -> list[Any]:
        """The field ``name`` of every event (read from the records while not decoded)."""
        if self.records is not None and self.datasource.decoder is not None:
            return self.datasource.decoder.field_values(self.records, name)
        return [ev[name] for ev in self.events]

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self.events)

    @property
    def is_array(self) -> bool:
        return self.datasource.kind != "tracer"

    def merged(self) -> list[Event]:
        """The events with their container fields merged in (done once, in place)."""
        extras = self.extras
        if extras is not None:
            for ev, extra in zip(self.events, extras, strict=True):
                ev.update(extra.plain)
            self.extras = None
        return self.events

    def pairs(self) -> Iterator[tuple[Event, Enrichment | None]]:
        """``(event, enrichment or None)`` for every event (see ``Gadget.event_pairs``)."""
        if self.extras is None:
            return zip(self.events, repeat(None))
        return zip(self.events, self.extras, strict=True)

    def keep(self, flags: list[bool]) -> None:
        """Keep the events whose flag is true (extras follow their events)."""
        self.events = [ev for ev, keep in zip(self.events, flags, strict=True) if keep]
        if self.extras is not None:
            self.extras = [x for x, keep in zip(self.extras, flags, strict=True) if keep]

    def split(self, n: int) -> Batch:
        """Keep the first ``n`` events; the rest, as a new batch, is returned."""
        extras = None if self.extras is None else self.extras[n:]
        if self.records is not None:
            rest = Batch.of_records(self.datasource, self.records[n:])
            rest.extras = extras
            del self.records[n:]
        else:
            rest = Batch(self.datasource, self.events[n:], extras)
            del self.events[n:]
        if self.extras is not None:
            del self.extras[n:]
        return rest


class Stage:
    """One named step of a run. Subclasses set :attr:`name` and :attr:`priority` and
    override the hooks they need; every hook is optional."""

    name = ""
    priority = 0

    def needs(self) -> Needs:
        """Declared needs (known after :meth:`pre_start`)."""
        return NOTHING

    def pre_start(self, ctx: RunContext) -> None:
        """Plan and validate, before anything is loaded into the kernel."""

    def start(self, ctx: RunContext) -> None:
        """Do this stage's part of starting the run."""

    def stop(self) -> None:
        """The run is ending: stop producing (safe to call more than once)."""

    def close(self) -> None:
        """Free what :meth:`start` took (called once, also after a failed start)."""

    def describe(self) -> str:
        return self.name


class EventStage(Stage):
    """A stage that sees every batch of events."""

    def plan(self, later_needs_enrichment: bool) -> None:
        """Told, before events flow, whether a later stage or the consumer reads the
        container fields (only the enrichment stage cares)."""

    def process(self, batch: Batch) -> list[Batch]:
        """The batches that go on to the next stage: usually ``[batch]``, changed or not;
        ``[]`` drops it; more than one adds events (of any data source)."""
        return [batch]

    def poll(self) -> list[Batch]:
        """Batches the stage emits on its own, not in answer to a batch (a WASM module's
        lifecycle calls, events another thread queued); the runner asks between reads
        and once more when the run ends (``Pipeline.finish``)."""
        return []


__all__ = ["ATTACH", "CONTAINERS", "DECODE", "ENRICH", "FILTER", "FORMATTERS", "LOAD", "USTACK",
           "NOTHING", "OBJECT", "PARAMS", "PROCESSORS", "READERS", "SORT", "SOURCE", "WASM",
           "Batch", "Event", "EventStage", "Needs", "Stage"]
