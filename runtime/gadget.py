"""The runtime's Python API: a gadget run, composed of the pipeline's stages.

    from gadgetsmith.runtime import Gadget
    with Gadget("trace_open:dev", params={"pid": 42}) as g:
        for event in g.events(timeout=5):
            print(event["proc.comm"], event["fname"])

Events are flat dicts keyed by IG's dotted field names (``nest()`` turns one into nested
JSON). ``processors`` run on every event in order; a processor returns the event,
possibly changed, or None to drop it. The stages (:mod:`gadgetsmith.runtime.pipeline`)
are source -> containers -> object -> params -> load -> readers -> attach -> decode ->
formatters -> ustack -> enrich -> processors -> wasm -> filter -> sort; ``stages=`` adds or
replaces some.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.bpf.loader import LoadedGadget, UprobeAttachment
from gadgetsmith.runtime.bpf.objmodel import GadgetObject
from gadgetsmith.runtime.containers.collection import ContainerCollection, ContainerSelector
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.events.enrichment import Enrichment
from gadgetsmith.runtime.pipeline.attach import AttachStage
from gadgetsmith.runtime.pipeline.containers import ContainersStage
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.decode import DecodeStage
from gadgetsmith.runtime.pipeline.enrich import EnrichStage
from gadgetsmith.runtime.pipeline.filter import FilterStage
from gadgetsmith.runtime.pipeline.formatters import FormattersStage
from gadgetsmith.runtime.pipeline.load import LoadStage
from gadgetsmith.runtime.pipeline.model import ObjectStage
from gadgetsmith.runtime.pipeline.params import ParamsStage
from gadgetsmith.runtime.pipeline.pipeline import Pipeline
from gadgetsmith.runtime.pipeline.processors import Processor, ProcessorStage
from gadgetsmith.runtime.pipeline.readers import ReadersStage
from gadgetsmith.runtime.pipeline.run import Runner
from gadgetsmith.runtime.pipeline.sort import SortStage
from gadgetsmith.runtime.pipeline.source import (
    GadgetSource,
    SourceStage,
    load_btfgen_layer,
    load_image,
    open_source,
)
from gadgetsmith.runtime.pipeline.stage import Batch, Event, Stage
from gadgetsmith.runtime.pipeline.ustack import UserStackStage
from gadgetsmith.runtime.pipeline.wasmslot import WasmSlot


class Gadget:
    """A gadget loaded into this kernel and attached; close it (or use ``with``).

    ``image``: an image reference of the local store (``store``), a ``.o`` path, object
    bytes, or a :class:`~gadgetsmith.runtime.pipeline.source.GadgetSource`; ``metadata``
    replaces its gadget.yaml. ``params``: ``--param`` values by flag name or variable.
    ``filter``: IG's ``--filter`` syntax. ``sort``: ``f1,-f2`` for snapshots and map
    iterator rounds. ``perf_buffer_pages``: pages per CPU for tracer maps that are perf
    event arrays.

    ``host=False`` keeps only events from the containers ``selector`` chooses (a
    :class:`~gadgetsmith.runtime.containers.collection.ContainerSelector`; empty: all
    containers), filtered in the kernel. ``containers``: a collection to use, True to
    find this host's container runtimes (even with ``host``), False for none; by default
    one is made when ``host`` is false. With a collection, events get ``runtime.*`` /
    ``k8s.*`` fields, and uprobes are attached to each selected container's own copy of
    their file as containers appear.

    ``on_lost(count, datasource)`` gets newly lost records (their total is
    :attr:`lost_samples`); ``on_warning(text)`` one-line warnings (also kept in
    :attr:`warnings`), such as a container whose copy of a library lacks the probed
    symbol; ``on_debug(text)`` which file each uprobe or USDT probe is attached to.

    On a kernel without BTF, CO-RE relocations use this machine's entry of the image's
    btfgen layer (read from the store for an image; ``btfgen_layer`` for an object given
    as bytes or a file), see :mod:`gadgetsmith.runtime.bpf.btfgen`.

    A gadget with a WASM module (an image's WASM layer; ``wasm``: a module's bytes for an
    object given as bytes or a file) runs it in the pipeline's wasm stage
    (:mod:`gadgetsmith.runtime.wasm.stage`, imported only then, see
    :mod:`~gadgetsmith.runtime.pipeline.wasmslot`): the module's fields are in the events, its
    data sources' events come out of :meth:`run` and :meth:`events` like the others."""

    def __init__(
        self,
        image: str | Path | bytes | GadgetSource,
        params: dict[str, Any] | None = None,
        store: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        filter: str | None = None,
        processors: list[Processor] | None = None,
        host: bool = True,
        selector: ContainerSelector | None = None,
        containers: ContainerCollection | bool | None = None,
        perf_buffer_pages: int = 64,
        on_lost: Callable[[int, str], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_debug: Callable[[str], None] | None = None,
        sort: str | None = None,
        stages: list[Stage] | None = None,
        btfgen_layer: bytes | None = None,
        wasm: bytes | None = None,
    ) -> None:
        self.ctx = RunContext(host=host, selector=selector or ContainerSelector(),
                              on_lost=on_lost, on_warning=on_warning, on_debug=on_debug,
                              btfgen_layer=btfgen_layer, wasm=wasm)
        #: the caller's per-event hooks (this list: it may be changed between reads)
        self.processors: list[Processor] = list(processors or [])
        self.pipeline = Pipeline([
            SourceStage(open_source(image, store, metadata)), ContainersStage(containers),
            ObjectStage(), ParamsStage(params), LoadStage(), ReadersStage(perf_buffer_pages),
            AttachStage(), DecodeStage(), FormattersStage(), UserStackStage(), EnrichStage(),
            ProcessorStage(self.processors), WasmSlot(), FilterStage(filter), SortStage(sort),
            *(stages or [])])
        self.pipeline.start(self.ctx)
        self.ctx.debug(f"pipeline: {self.pipeline.describe()}")
        self._runner = Runner(self.pipeline, self.ctx)

    # -- what the stages produced -------------------------------------------------------
    @property
    def object(self) -> GadgetObject | None:
        return self.ctx.object

    @property
    def metadata(self) -> dict[str, Any]:
        return self.ctx.metadata

    @property
    def datasources(self) -> list[DataSource]:
        return list(self.ctx.datasources.values())

    @property
    def loaded(self) -> LoadedGadget | None:
        return self.ctx.loaded

    @property
    def containers(self) -> ContainerCollection | None:
        return self.ctx.containers

    @property
    def host(self) -> bool:
        return self.ctx.host

    @property
    def selector(self) -> ContainerSelector:
        return self.ctx.selector

    @property
    def warnings(self) -> list[str]:
        return self.ctx.warnings

    @property
    def raw_records(self) -> int:
        """Records read from the kernel (before filters and processors)."""
        return self.ctx.raw_records

    @property
    def lost_samples(self) -> int:
        return self.ctx.lost_samples

    def uprobe_attachments(self) -> list[UprobeAttachment]:
        """The uprobe and USDT links now: program, section, the path given to the kernel,
        the probed file's (st_dev, st_ino) and its owners (``host`` and container ids,
        each with its name)."""
        return self.ctx.loaded.uprobe_attachments() if self.ctx.loaded is not None else []

    # -- running ------------------------------------------------------------------------
    def run(self, on_batch: Callable[[Batch], None], timeout: float | None = None,
            count: int | None = None, interval: float = 1.0,
            on_idle: Callable[[], None] | None = None) -> None:
        """Run as ``gadget run`` does: every tracer followed until ``timeout``, ``count``
        events or :meth:`stop`; or every iterator run once; or every map iterator drained
        each ``interval`` seconds (``count`` rounds). Each :class:`Batch` (of one data
        source; container fields possibly beside the events, see ``Batch.pairs``) goes
        to ``on_batch``; ``on_idle`` runs whenever everything read was handed over."""
        self._runner.run(on_batch, timeout, count, interval, on_idle)

    def batches(self, timeout: float | None = None, count: int | None = None,
                datasource: str | None = None,
                on_idle: Callable[[], None] | None = None) -> Iterator[Batch]:
        """The tracers' batches (every tracer, or ``datasource``), as :meth:`events`."""
        return self._runner.follow(datasource, timeout, count, on_idle)

    def events(self, timeout: float | None = None, count: int | None = None,
               datasource: str | None = None,
               on_idle: Callable[[], None] | None = None) -> Iterator[Event]:
        """Decoded events of the tracers (every tracer, or ``datasource``), until
        ``timeout`` / ``count`` / :meth:`stop` (or forever). Lost records are counted in
        :attr:`lost_samples`. ``on_idle`` runs whenever every record read so far was
        handed out (e.g. to flush output)."""
        follow = self._runner.follow(datasource, timeout, count, on_idle, merged=True)
        return self._hand_out(follow, pairs=False)

    def event_pairs(self, timeout: float | None = None, count: int | None = None,
                    datasource: str | None = None,
                    on_idle: Callable[[], None] | None = None,
                    ) -> Iterator[tuple[Event, Enrichment | None]]:
        """Like :meth:`events`, as ``(event, enrichment)`` pairs: the event lacks the
        container fields, which ``enrichment`` (shared by every event of one container)
        holds; give both to ``Printer.event``, or merge with
        ``event.update(enrichment.fields)``. ``enrichment`` is None when the event is
        complete already: no container collection, or a stage (a ``--filter`` on
        ``runtime.*``/``k8s.*``, a processor) needed the fields."""
        follow = self._runner.follow(datasource, timeout, count, on_idle)
        return self._hand_out(follow, pairs=True)

    def _hand_out(self, follow: Generator[Batch, None, None], pairs: bool) -> Iterator[Any]:
        """Each batch's events (or pairs); the ones a caller that stops early did not take
        go back to the pending batches: the next read starts with them."""
        try:
            for batch in follow:
                it: Iterator[Any] = batch.pairs() if pairs else iter(batch.merged())
                try:
                    yield from it
                finally:
                    rest = list(it)
                    if rest:
                        self._runner.pending.appendleft(_rest(batch, rest, pairs))
        finally:
            follow.close()

    def snapshot(self, datasource: str | None = None) -> list[Event]:
        """Run the (first, or ``datasource``'s) iterator programs once; one event per entry."""
        return self._array("iterator", datasource, "this gadget has no iterator data source")

    def drain(self, datasource: str | None = None) -> list[Event]:
        """Read and empty a map iterator's hash map once (entries since the last drain)."""
        return self._array("mapiter", datasource, "this gadget has no map-iterator data source")

    def _array(self, kind: str, datasource: str | None, missing: str) -> list[Event]:
        found = self.ctx.of_kind(kind, datasource)
        if not found:
            raise RuntimeGadgetError(missing)
        return list(chain.from_iterable(b.merged() for b in self._runner.arrays(found[:1])))

    def check_lost(self, datasource: str | None = None) -> int:
        """Collect newly lost records (perf lost callback, ``<map>_lost_samples``); report
        them through ``on_lost`` and add them to :attr:`lost_samples`. Returns the new count."""
        readers = self.pipeline["readers"]
        assert isinstance(readers, ReadersStage)
        return readers.check_lost(datasource)

    def stop(self) -> None:
        """Make a running :meth:`run` or :meth:`events` (or a caller's loop checking
        :attr:`stopped`) return soon. Safe from signal handlers and other threads."""
        self.ctx.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.ctx.stopped

    def wait_stopped(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True as soon as :meth:`stop` was called."""
        return self.ctx.stop_event.wait(max(0.0, timeout))

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Detach and free everything (readers, links, the object, an own collection)."""
        self.pipeline.close()

    def __enter__(self) -> Gadget:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _rest(batch: Batch, rest: list[Any], pairs: bool) -> Batch:
    """A batch of the events (or ``(event, enrichment)`` pairs) ``rest`` of ``batch``."""
    if not pairs:
        return Batch(batch.datasource, rest)
    extras = None if batch.extras is None else [x for _ev, x in rest]
    return Batch(batch.datasource, [ev for ev, _x in rest], extras)


__all__ = ["Batch", "DataSource", "Gadget", "Processor", "load_btfgen_layer", "load_image"]
