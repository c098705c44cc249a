"""The runtime's Python API.

    from gadgetsmith.runtime import Gadget
    with Gadget("trace_open:dev", params={"pid": 42}) as g:
        for event in g.events(timeout=5):
            print(event["proc.comm"], event["fname"])

Events are flat dicts keyed by IG's dotted field names (``nest()`` turns one into nested
JSON). ``processors`` run on every event in order (enrichment, filters, WASM later); a
processor returns the event, possibly changed, or None to drop it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.bpf import btfgen
from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.loader import GadgetObject, LoadedGadget, host_arch
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.events import filter as filt
from gadgetsmith.runtime.events.decode import Decoder
from gadgetsmith.runtime.events.enrichment import EMPTY, EMPTY_FIELDS, Enrichment, EnrichmentTable

Processor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass
class DataSource:
    name: str
    kind: str  # tracer | iterator | mapiter
    decoder: Decoder
    map_name: str = ""
    programs: tuple[str, ...] = ()
    key_size: int = 0
    value_size: int = 0


def load_image(ref: str, store: str | Path | None = None,
               descriptor: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """eBPF object and metadata of an image in the local store, for this host's arch.

    ``descriptor``: the image's index descriptor when the caller has already resolved
    ``ref`` (which then only names the image in errors), so the image loaded is the one
    the caller checked even if the tag moves meanwhile.
    """
    import yaml
    from gadgetsmith.runtime.oci import mediatypes as mt
    from gadgetsmith.runtime.oci.layout import Layout, LayoutError, UnknownReference, default_store_path
    from gadgetsmith.runtime.oci.reference import InvalidReference

    layout = Layout(Path(store) if store else default_store_path())
    try:
        layout.check()
        desc = descriptor if descriptor is not None else layout.resolve(ref)[1]
        man_desc = layout.manifest_for_arch(desc, host_arch())
        manifest = layout.read_json(man_desc["digest"])
    except UnknownReference:
        raise RuntimeGadgetError(
            f"unknown reference {ref!r}: build or pull it first (see 'gadget list')") from None
    except (LayoutError, InvalidReference) as e:
        raise RuntimeGadgetError(f"{ref}: {e}") from None
    metadata: dict[str, Any] = {}
    cfg = manifest.get("config") or {}
    if cfg.get("mediaType") == mt.CONFIG:
        loaded = yaml.safe_load(layout.read_blob(cfg["digest"]))
        metadata = loaded if isinstance(loaded, dict) else {}
    for layer in manifest.get("layers") or []:
        if layer.get("mediaType") == mt.EBPF:
            return layout.read_blob(layer["digest"]), metadata
    raise RuntimeGadgetError(f"{ref}: the image has no eBPF program for {host_arch()}")


def load_btfgen_layer(ref: str, store: str | Path | None = None,
                      descriptor: dict[str, Any] | None = None) -> bytes | None:
    """The btfgen layer of an image's manifest for this host's arch, or None."""
    from gadgetsmith.runtime.oci import mediatypes as mt
    from gadgetsmith.runtime.oci.layout import Layout, LayoutError, UnknownReference, default_store_path
    from gadgetsmith.runtime.oci.reference import InvalidReference

    layout = Layout(Path(store) if store else default_store_path())
    try:
        desc = descriptor if descriptor is not None else layout.resolve(ref)[1]
        manifest = layout.read_json(layout.manifest_for_arch(desc, host_arch())["digest"])
        for layer in manifest.get("layers") or []:
            if layer.get("mediaType") == mt.BTFGEN:
                return layout.read_blob(layer["digest"])
    except (UnknownReference, LayoutError, InvalidReference) as e:
        raise RuntimeGadgetError(f"{ref}: {e}") from None
    return None


class Gadget:
    def __init__(
        self,
        image: str | Path | bytes,
        params: dict[str, Any] | None = None,
        store: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        filter: str | None = None,
        processors: list[Processor] | None = None,
        host: bool = True,
        selector: Any = None,
        containers: Any = None,
        perf_buffer_pages: int = 64,
        on_lost: Callable[[int, str], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_debug: Callable[[str], None] | None = None,
        btfgen_layer: bytes | None = None,
    ) -> None:
        """``perf_buffer_pages``: pages per CPU for tracer maps that are perf event arrays.
        ``on_lost(count, datasource)`` is called with newly lost records (perf buffer
        overflow, or the gadget's ``<map>_lost_samples`` counter); the total is
        :attr:`lost_samples`.

        ``host=False`` keeps only events from containers chosen by ``selector`` (a
        :class:`~gadgetsmith.runtime.containers.collection.ContainerSelector`; empty = all containers),
        filtered in the kernel. With a container collection (``containers``, created
        automatically when host=False), events get ``runtime.*`` / ``k8s.*`` fields, and
        uprobes are also attached to each selected container's own copy of their file
        (resolved in its filesystem), as containers appear.

        ``on_warning(text)`` gets one-line warnings (also kept in :attr:`warnings`), such
        as a container whose copy of a library lacks the probed symbol or USDT probe;
        ``on_debug(text)`` says which file each uprobe or USDT probe is attached to, for
        which container.

        On a kernel without BTF, CO-RE relocations use this machine's entry of the image's
        btfgen layer (read from the store for an image reference; ``btfgen_layer`` for an
        object given as bytes or a file), see :mod:`gadgetsmith.runtime.bpf.btfgen`."""
        from_store = False
        if isinstance(image, bytes):
            data, meta = image, metadata or {}
        elif isinstance(image, Path) or (isinstance(image, str) and image.endswith(".o")
                                          and Path(image).is_file()):
            data, meta = Path(image).read_bytes(), metadata or {}
        else:
            data, meta = load_image(str(image), store)
            from_store = True
            if metadata:
                meta = metadata
        self.object = GadgetObject(data, meta)
        self.metadata = meta
        self.datasources = self._datasources()
        self.processors: list[Processor] = []
        self.host = host
        self.selector = selector
        self.containers = containers
        self._own_containers = False
        self.raw_records = 0
        self.lost_samples = 0
        self.perf_buffer_pages = perf_buffer_pages
        self.on_lost = on_lost
        self.warnings: list[str] = []
        self.on_warning = on_warning
        self._uprobes_ready = False
        self._stop = threading.Event()
        self._perf_lost = 0
        self._map_lost_seen: dict[str, int] = {}
        self._queues: dict[str, deque[bytes]] = {}
        self._readers: dict[str, Any] = {}  # RingBuffer or PerfBuffer
        self.loaded = None
        self._enrichment: EnrichmentTable | None = None
        self._enrich_processor: Processor | None = None
        if not host and self.containers is None:
            from gadgetsmith.runtime.containers.collection import ContainerCollection

            self.containers = ContainerCollection()
            self._own_containers = True
        if self.containers is not None:
            self._setup_enrichment()
        self.processors += list(processors or [])
        if filter:
            ds = self.datasources[0] if len(self.datasources) == 1 else None
            if ds is None:
                raise RuntimeGadgetError("--filter needs a gadget with one data source")
            sample = ds.decoder.decode(b"")
            if self.containers is not None:
                sample.update(EMPTY_FIELDS)  # the names and types a --filter may use
            pred = filt.build(filter, filt.kinds_from_sample(sample.keys(), sample))

            def filter_proc(ev: dict[str, Any]) -> dict[str, Any] | None:
                return ev if pred(ev) else None

            # event_pairs() merges enrichment before the filter only when it reads it
            filter_proc.reads_enrichment = any(  # type: ignore[attr-defined]
                r.field in EMPTY_FIELDS for r in filt.parse(filter))
            self.processors.append(filter_proc)
        # validate params before touching the kernel
        values = {str(k): str(v) for k, v in (params or {}).items()}
        for k, v in values.items():
            self.object.param(k).encode(v)
        if from_store and btfgen_layer is None and btfgen.needs_bundle():
            btfgen_layer = load_btfgen_layer(str(image), store)
        with btfgen.btf_for_load(btfgen_layer) as btf_path:
            self.loaded = LoadedGadget(self.object, values, autoattach=False,
                                       filter_by_mntns=not host, on_warning=self._warning,
                                       on_debug=on_debug, btf_custom_path=btf_path)
        try:
            if self.containers is not None:
                self._start_containers()
        except BaseException:
            self.close()
            raise
        self._attach()

    # -- setup ------------------------------------------------------------------------
    def _datasources(self) -> list[DataSource]:
        """The object model's data sources, each with a decoder built from its description
        (the fields `gadget validate` and `gadget metadata` report are the ones decoded)."""
        out = [DataSource(info.name, info.kind, info.decoder(), map_name=info.map_name,
                          programs=tuple(info.programs), key_size=info.key_size,
                          value_size=info.value_size)
               for info in self.object.datasources.values()]
        if not out:
            raise RuntimeGadgetError("the gadget declares no data source (GADGET_TRACER, "
                                     "GADGET_ITER or GADGET_MAPITER)")
        return out

    # -- containers -------------------------------------------------------------------
    def _setup_enrichment(self) -> None:
        from gadgetsmith.runtime.events.decode import Column

        # like ig: only data sources that carry a mount namespace id, or else a network
        # namespace id, get container fields
        for ds in self.datasources:
            if not (ds.decoder.mntns_field or ds.decoder.netns_field):
                continue
            cols = [Column("runtime.containerName", alias="")]
            cols += [Column(n, hidden=True) for n in EMPTY_FIELDS if n != "runtime.containerName"]
            ds.decoder.columns[:0] = cols
        table = self._enrichment = EnrichmentTable(self.containers)
        # (field, by netns?) per data source: its mount namespace id field, else its
        # network namespace id field; a name some data source has as a mntns id wins
        keyed: dict[str, bool] = {}
        for ds in self.datasources:
            if ds.decoder.mntns_field:
                keyed[ds.decoder.mntns_field] = False
        for ds in self.datasources:
            f = ds.decoder.netns_field
            if f and not ds.decoder.mntns_field:
                keyed.setdefault(f, True)
        keys = sorted(keyed.items(), key=lambda kv: kv[1])  # mntns fields first

        # per record for snapshot() and drain(); events() and event_pairs() do the same
        # lookup in their loop with one table read per batch (see _enrich_plan)
        def enrich(ev: dict[str, Any]) -> dict[str, Any]:
            for f, net in keys:
                if f in ev:
                    t = table.current_netns() if net else table.current()
                    ev.update(t.get(ev[f], EMPTY).plain)
                    break
            return ev  # a data source without a namespace id is not enriched

        self._enrich_processor = enrich
        self.processors.append(enrich)

    def _warning(self, text: str) -> None:
        self.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def _start_containers(self) -> None:
        from gadgetsmith.runtime.containers.collection import ContainerSelector

        coll = self.containers
        sel = self.selector or ContainerSelector()
        loaded = self.loaded
        uprobes = bool(loaded.uprobe_programs())
        if not self.host or uprobes:
            # called from the collection's thread as soon as it sees a container start
            # or stop (the same moment the mount namespace filter learns of it)
            def added(c) -> None:
                if not sel.matches(c) or self.loaded is None:
                    return
                if not self.host and c.mntns:
                    loaded.set_mntns({c.mntns})
                if uprobes and self._uprobes_ready and c.pid > 0:
                    loaded.attach_container_uprobes(c.id, c.pid, c.name)

            def removed(c) -> None:
                if self.loaded is None or not self.loaded.obj:
                    return
                if not self.host and c.mntns:
                    loaded.set_mntns({c.mntns}, present=False)
                if uprobes:
                    loaded.detach_container_uprobes(c.id)

            coll.on_add.append(added)
            coll.on_remove.append(removed)
            self._callbacks = (added, removed)
        if self._own_containers or not coll.running:
            coll.start()
        if not self.host:
            loaded.set_mntns({c.mntns for c in coll.select(sel) if c.mntns})

    def _attach_container_uprobes(self) -> None:
        """After the host's attachments (and the readers): probes in the containers
        running now; later ones get theirs from the collection's on_add callback."""
        from gadgetsmith.runtime.containers.collection import ContainerSelector

        if self.containers is None or not self.loaded.uprobe_programs():
            return
        self._uprobes_ready = True
        for c in self.containers.select(self.selector or ContainerSelector()):
            if c.pid > 0:
                self.loaded.attach_container_uprobes(c.id, c.pid, c.name)

    def uprobe_attachments(self) -> list[Any]:
        """The uprobe and USDT links now: program, section, the path given to the kernel, the
        probed file's (st_dev, st_ino) and its owners (``host`` and container ids, each
        with its name)."""
        return self.loaded.uprobe_attachments() if self.loaded is not None else []

    def _attach(self) -> None:
        iter_progs = {p for ds in self.datasources for p in ds.programs}
        try:
            # readers first: a perf event array drops records emitted before its per-CPU
            # buffers are opened
            for ds in self.datasources:
                if ds.kind == "tracer":
                    self._readers[ds.name] = self._reader(ds)
            self.loaded.attach_all(skip=iter_progs)
            self._attach_container_uprobes()
        except BaseException:
            self.close()
            raise

    # -- reading ----------------------------------------------------------------------
    def _process(self, ev: dict[str, Any]) -> dict[str, Any] | None:
        self.raw_records += 1
        for p in self.processors:
            ev = p(ev)
            if ev is None:
                return None
        return ev

    def stop(self) -> None:
        """Make a running :meth:`events` (or a caller's loop checking :attr:`stopped`)
        return soon. Safe from signal handlers and other threads."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_stopped(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True as soon as :meth:`stop` was called."""
        return self._stop.wait(max(0.0, timeout))

    def _reader(self, ds: DataSource) -> Any:
        fd = self.loaded.map_fd(ds.map_name)
        queue = self._queues.setdefault(ds.name, deque())
        if L.map_type(self.loaded.maps[ds.map_name]) == L.MAP_TYPE_PERF_EVENT_ARRAY:
            def lost(_cpu: int, count: int) -> None:
                self._perf_lost += count

            return L.PerfBuffer(fd, self.perf_buffer_pages, queue.append, lost)
        return L.RingBuffer(fd, queue.append)

    def check_lost(self, datasource: str | None = None) -> int:
        """Collect newly lost records (perf lost callback, ``<map>_lost_samples``); report
        them through ``on_lost`` and add them to :attr:`lost_samples`. Returns the new count."""
        new = self._perf_lost
        self._perf_lost = 0
        name = datasource or ""
        for ds in self.datasources:
            if ds.kind != "tracer" or (datasource and ds.name != datasource):
                continue
            name = name or ds.name
            counter = f"{ds.map_name}_lost_samples"
            m = self.loaded.maps.get(counter) if self.loaded else None
            if m is None or L.map_type(m) != L.MAP_TYPE_PERCPU_ARRAY:
                continue
            total = L.percpu_u64_sum(self.loaded.map_fd(counter))
            new += total - self._map_lost_seen.get(counter, 0)
            self._map_lost_seen[counter] = total
        if new > 0:
            self.lost_samples += new
            if self.on_lost is not None:
                self.on_lost(new, name)
        return new

    def events(self, timeout: float | None = None, count: int | None = None,
               datasource: str | None = None,
               on_idle: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
        """Decoded events from the gadget's tracer, until timeout/count/:meth:`stop`
        (or forever). Lost records are counted in :attr:`lost_samples`. ``on_idle`` runs
        whenever every record read so far was handed out (e.g. to flush output)."""
        return self._read(timeout, count, datasource, on_idle, split=False)

    def event_pairs(self, timeout: float | None = None, count: int | None = None,
                    datasource: str | None = None,
                    on_idle: Callable[[], None] | None = None,
                    ) -> Iterator[tuple[dict[str, Any], Enrichment | None]]:
        """Like :meth:`events`, as ``(event, enrichment)`` pairs: the event lacks the
        container fields, which ``enrichment`` (an :class:`Enrichment`, shared by every
        event of one container) holds; give both to :meth:`Printer.event`, or merge with
        ``event.update(enrichment.fields)``. ``enrichment`` is None when the event is
        already complete: no container collection, or a processor (a ``--filter`` on
        ``runtime.*``/``k8s.*``, any processor added by the caller) needed the fields."""
        return self._read(timeout, count, datasource, on_idle, split=True)

    def _read(self, timeout: float | None, count: int | None, datasource: str | None,
              on_idle: Callable[[], None] | None, split: bool) -> Iterator[Any]:
        tracers = [d for d in self.datasources if d.kind == "tracer"
                   and (datasource is None or d.name == datasource)]
        if not tracers:
            raise RuntimeGadgetError("this gadget has no tracer data source: use snapshot()")
        ds = tracers[0]
        reader = self._readers.get(ds.name)
        if reader is None:
            raise RuntimeGadgetError("the gadget is closed")
        return self._loop(ds, reader, timeout, count, on_idle, split)

    def _enrich_plan(self, split: bool) -> tuple[list[Processor] | None, bool]:
        """How a batch of events gets its enrichment: ``(rest, merge)``.

        ``rest`` is None when every processor must run as it is (no container collection,
        or a caller put a processor before the enrichment): the enrich processor then
        looks the event up itself. Otherwise the loop looks the enrichment up (one table
        read per batch, one dict lookup per event) and runs only ``rest``; ``merge`` says
        whether it merges the fields into the event first: always for events(), and for
        event_pairs() when a later processor (a ``--filter`` on ``runtime.*``/``k8s.*``,
        any processor added by the caller) reads them."""
        procs, enrich = self.processors, self._enrich_processor
        if enrich is None or not procs or procs[0] is not enrich or enrich in procs[1:]:
            return None, False
        rest = procs[1:]
        return rest, not split or any(getattr(p, "reads_enrichment", True) for p in rest)

    def _loop(self, ds: DataSource, reader: Any, timeout: float | None, count: int | None,
              on_idle: Callable[[], None] | None, split: bool) -> Iterator[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        emitted = 0
        next_lost_check = time.monotonic() + 0.5
        decode = ds.decoder.decode
        queue = self._queues[ds.name]
        table = self._enrichment
        # the enrichment key: the mount namespace id, else the network namespace id
        mfield = ds.decoder.mntns_field
        nfield = None if mfield else ds.decoder.netns_field
        try:
            while True:
                popleft = queue.popleft
                rest, merge = self._enrich_plan(split)
                # per batch: the table of containers known now (re-read only when the
                # collection changed); per event, its enrichment is get(ev[key], EMPTY); a
                # data source without a namespace id has none (None)
                key, get = None, None
                if rest is None:
                    processors = self.processors
                else:
                    assert table is not None
                    processors = rest  # no namespace id: no container fields
                    if mfield:
                        key, get = mfield, table.current().get
                    elif nfield:
                        key, get = nfield, table.current_netns().get
                while queue:
                    ev = decode(popleft())
                    self.raw_records += 1
                    extra = get(ev[key], EMPTY) if key else None
                    if merge and extra is not None:
                        ev.update(extra.plain)
                        extra = None
                    for p in processors:
                        ev = p(ev)
                        if ev is None:
                            break
                    if ev is None:
                        continue
                    yield (ev, extra) if split else ev
                    emitted += 1
                    if count is not None and emitted >= count:
                        return
                if on_idle is not None:
                    on_idle()
                if self._stop.is_set():
                    return
                now = time.monotonic()
                if now >= next_lost_check:
                    self.check_lost(ds.name)
                    next_lost_check = now + 0.5
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return
                    wait = int(min(left, 0.2) * 1000)
                else:
                    wait = 200
                reader.poll(max(wait, 1))
        finally:
            if self.loaded is not None and self.loaded.obj:
                self.check_lost(ds.name)

    def snapshot(self, datasource: str | None = None) -> list[dict[str, Any]]:
        """Run the iterator programs once; one decoded record per entry."""
        its = [d for d in self.datasources if d.kind == "iterator"
               and (datasource is None or d.name == datasource)]
        if not its:
            raise RuntimeGadgetError("this gadget has no iterator data source")
        ds = its[0]
        out = []
        size = ds.decoder.size
        for prog in ds.programs:
            data = self.loaded.run_iterator(prog)
            for off in range(0, len(data) - size + 1, size):
                ev = self._process(ds.decoder.decode(data[off:off + size]))
                if ev is not None:
                    out.append(ev)
        return out

    def drain(self, datasource: str | None = None) -> list[dict[str, Any]]:
        """Read and empty a map iterator's hash map once (entries since the last drain)."""
        mis = [d for d in self.datasources if d.kind == "mapiter"
               and (datasource is None or d.name == datasource)]
        if not mis:
            raise RuntimeGadgetError("this gadget has no map-iterator data source")
        ds = mis[0]
        out = []
        for k, v in self.loaded.drain_hash(ds.map_name, ds.key_size, ds.value_size):
            ev = self._process(ds.decoder.decode(k + v))
            if ev is not None:
                out.append(ev)
        return out

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        for r in getattr(self, "_readers", {}).values():
            r.close()
        self._readers = {}
        if getattr(self, "loaded", None) is not None:
            self.loaded.close()
            self.loaded = None
        cbs = getattr(self, "_callbacks", None)
        if cbs and self.containers is not None:
            for lst, cb in ((self.containers.on_add, cbs[0]), (self.containers.on_remove, cbs[1])):
                if cb in lst:
                    lst.remove(cb)
            self._callbacks = None
        if getattr(self, "_own_containers", False) and self.containers is not None:
            self.containers.stop()

    def __enter__(self) -> Gadget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
