"""What the stages of one run share: the :class:`RunContext` and its data sources."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.containers.collection import ContainerSelector
from gadgetsmith.runtime.errors import RuntimeGadgetError

if TYPE_CHECKING:
    from gadgetsmith.runtime.bpf.loader import LoadedGadget
    from gadgetsmith.runtime.bpf.objmodel import GadgetObject
    from gadgetsmith.runtime.containers.collection import ContainerCollection
    from gadgetsmith.runtime.events.decode import Column, Decoder


@dataclass(eq=False)
class DataSource:
    """One data source of the run: a tracer, an iterator or a map iterator of the object
    (with its decoder), or one a stage registered (``decoder`` None, events it emits)."""

    name: str
    kind: str  # tracer | iterator | mapiter
    decoder: Decoder | None = None
    map_name: str = ""
    programs: tuple[str, ...] = ()
    key_size: int = 0
    value_size: int = 0
    #: the columns printers show (the decoder's own list when there is a decoder)
    columns: list[Column] = field(default_factory=list)
    #: fields stages add to every event (name -> a value of its type: a WASM module's,
    #: ig's formatters'), and the decoded fields they remove (an endpoint's addr_raw):
    #: what a --filter may name besides the decoder's fields
    added: dict[str, Any] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.decoder is not None and not self.columns:
            self.columns = self.decoder.columns

    def sample(self) -> dict[str, Any]:
        """An event of this data source as the stages leave it (zero values): its field
        names and their types, for ``--filter``."""
        out = self.decoder.decode(b"") if self.decoder is not None else {}
        for name in self.removed:
            out.pop(name, None)
        out.update(self.added)
        return out


@dataclass(eq=False)
class RunContext:
    """Shared by the stages of one run. The source, object, load and containers stages
    fill in what they produce; every stage may warn, say things for --debug, and report
    lost records through the callbacks."""

    host: bool = True
    selector: ContainerSelector = field(default_factory=ContainerSelector)
    #: param flag name or variable -> value text, as given
    params: dict[str, str] = field(default_factory=dict)
    on_warning: Callable[[str], None] | None = None
    on_debug: Callable[[str], None] | None = None
    on_lost: Callable[[int, str], None] | None = None
    #: on a kernel without BTF: the image's btfgen layer (see runtime/bpf/btfgen.py)
    btfgen_layer: bytes | None = None
    #: the gadget's WASM module (the image's WASM layer), run by the wasm stage
    wasm: bytes | None = None
    #: values of the module's params (gadget.yaml params.wasm), by key
    wasm_params: dict[str, str] = field(default_factory=dict)
    #: params of ig's operators rather than of the object: ``iface`` (the interface TC
    #: classifier programs attach to)
    operator_params: dict[str, str] = field(default_factory=dict)
    # produced by stages
    data: bytes = b""
    metadata: dict[str, Any] = field(default_factory=dict)
    object: GadgetObject | None = None
    datasources: dict[str, DataSource] = field(default_factory=dict)
    containers: ContainerCollection | None = None
    loaded: LoadedGadget | None = None
    # counters and messages
    raw_records: int = 0
    lost_samples: int = 0
    warnings: list[str] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def warn(self, text: str) -> None:
        """A one-line warning (kept in :attr:`warnings`)."""
        self.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def debug(self, text: str) -> None:
        if self.on_debug is not None:
            self.on_debug(text)

    def lost(self, count: int, datasource: str) -> None:
        """``count`` more records of ``datasource`` were lost by the kernel side."""
        self.lost_samples += count
        if self.on_lost is not None:
            self.on_lost(count, datasource)

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def add_datasource(self, ds: DataSource) -> None:
        """Register a data source a stage emits events of (in its ``pre_start``, so that
        the consumer knows its columns)."""
        if ds.name in self.datasources:
            raise ValueError(f"data source {ds.name!r} exists already")
        self.datasources[ds.name] = ds

    def of_kind(self, kind: str, name: str | None = None) -> list[DataSource]:
        """The data sources of ``kind`` (only ``name``'s when given), in declaration order."""
        return [d for d in self.datasources.values()
                if d.kind == kind and (name is None or d.name == name)]

    def loaded_gadget(self) -> LoadedGadget:
        """The loaded object; an error when the run has not loaded it, or is closed."""
        if self.loaded is None:
            raise RuntimeGadgetError("the gadget is closed")
        return self.loaded


__all__ = ["DataSource", "RunContext"]
