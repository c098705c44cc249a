"""The in-memory model of data sources that a WASM module sees.

Independent of eBPF: the runtime describes each of its data sources once
(:class:`DataSourceSpec`: a name, single or array, fields with IG kinds) and then hands
over decoded events, which are plain flat dicts keyed by IG's dotted names
(``{"proc.comm": "cat", "args_size": 12, ...}``). An array data source's packet is a
list of such dicts. The module reads and writes those dicts through field handles.

Subscriptions of the module and of the runtime's own stages share one ordered chain per
data source (ascending priority, then subscription order), as in IG, so a runtime filter
at priority 9000 runs after a module callback at 0 and before one at 9999.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from gadgetsmith.runtime.wasm.kinds import Kind, default_value


class DataSourceType(enum.IntEnum):
    UNDEFINED = 0
    SINGLE = 1
    ARRAY = 2


class SubscriptionKind(enum.IntEnum):
    """The guest's numbers (``dataSourceSubscribe``'s second argument, as IG's Go SDK and
    host use them; IG's raw API document says 0/1/2, the code says 1/2/3)."""
    DATA = 1
    ARRAY = 2
    PACKET = 3


class FieldFlag(enum.IntFlag):
    NONE = 0
    HIDDEN = 1        # not a default column
    STATIC = 2        # a fixed-size member of the record (size > 0)
    ADDED = 4         # added by the module (dataSourceAddField)


@dataclass
class FieldSpec:
    """A field as the runtime describes it.

    ``size`` is the fixed size of a record member (a ``char comm[16]`` is a string of size
    16: the module may set at most 16 bytes, as IG); 0 for dynamic fields. ``raw`` says the
    runtime passes this text field as the record's raw bytes (NULs included, as IG's
    ``fieldGetBuffer`` returns them); the stage turns it back into text on the way out.
    """
    name: str
    kind: Kind | str | int
    size: int = 0
    tags: list[str] = dc_field(default_factory=list)
    annotations: dict[str, str] = dc_field(default_factory=dict)
    hidden: bool = False
    raw: bool = False


@dataclass
class DataSourceSpec:
    name: str
    fields: list[FieldSpec] = dc_field(default_factory=list)
    type: DataSourceType = DataSourceType.SINGLE
    tags: list[str] = dc_field(default_factory=list)
    annotations: dict[str, str] = dc_field(default_factory=dict)
    # annotations (from gadget.yaml) of fields the module adds, by field name
    field_annotations: dict[str, dict[str, str]] = dc_field(default_factory=dict)


class Field:
    __slots__ = ("name", "kind", "size", "tags", "annotations", "flags", "raw", "default",
                 "datasource", "requested")

    def __init__(self, datasource: DataSource, name: str, kind: Kind, size: int = 0,
                 tags: Iterable[str] = (), annotations: dict[str, str] | None = None,
                 flags: FieldFlag = FieldFlag.NONE, raw: bool = False) -> None:
        self.datasource = datasource
        self.name = name
        self.kind = kind
        self.size = size
        self.tags = list(tags)
        self.annotations = dict(annotations or {})
        self.flags = flags | (FieldFlag.STATIC if size else FieldFlag.NONE)
        self.raw = raw
        self.default: Any = default_value(kind)
        #: the module asked for a handle to it (dataSourceGetField)
        self.requested = False

    @property
    def hidden(self) -> bool:
        return bool(self.flags & FieldFlag.HIDDEN)

    @property
    def added(self) -> bool:
        return bool(self.flags & FieldFlag.ADDED)

    def add_tag(self, tag: str) -> None:
        if tag not in self.tags:
            self.tags.append(tag)

    def __repr__(self) -> str:
        return f"Field({self.datasource.name}:{self.name} {self.kind.name.lower()})"


class PacketArray(list):  # type: ignore[type-arg]
    """The packet of an array data source: a list of event dicts (``ds``: its source,
    for the defaults of new elements)."""
    __slots__ = ("ds",)

    def __init__(self, items: Iterable[dict[str, Any]] = (), ds: DataSource | None = None) -> None:
        super().__init__(items)
        self.ds = ds


Packet = "dict[str, Any] | PacketArray"

# A runtime stage in the chain: gets the event dict (DATA: one element of an array
# packet) or the PacketArray (ARRAY/PACKET on an array source) and returns it, possibly
# changed or replaced, or None to drop it.
HostSubscriber = Callable[[Any], Any]


class Subscription:
    __slots__ = ("priority", "seq", "kind", "guest", "target", "ds_handle")

    def __init__(self, priority: int, seq: int, kind: SubscriptionKind, guest: bool,
                 target: Any, ds_handle: int = 0) -> None:
        self.priority = priority
        self.seq = seq
        self.kind = kind
        self.guest = guest          # True: a module callback (target = its callback id)
        self.target = target        # False: a HostSubscriber
        self.ds_handle = ds_handle  # the handle the module subscribed with

    def __repr__(self) -> str:
        who = f"guest cb {self.target}" if self.guest else getattr(self.target, "__name__", "host")
        return f"<{self.kind.name} prio {self.priority} {who}>"


class DataSource:
    def __init__(self, name: str, type: DataSourceType = DataSourceType.SINGLE,
                 tags: Iterable[str] = (), annotations: dict[str, str] | None = None,
                 created_by_module: bool = False) -> None:
        self.name = name
        self.type = DataSourceType(type)
        self.tags = list(tags)
        self.annotations = dict(annotations or {})
        self.created_by_module = created_by_module
        self.referenced = True
        self.fields: dict[str, Field] = {}
        self.subscriptions: list[Subscription] = []
        self._seq = 0
        # hot-path caches, rebuilt when fields change
        self.fill: tuple[tuple[str, Any], ...] = ()      # module-added fields' defaults
        self.raw_text: tuple[str, ...] = ()              # raw text fields to turn into str
        self.raw_hex: tuple[str, ...] = ()               # bytes fields to turn into hex text
        self.defaults: dict[str, Any] = {}               # every field's default
        # gadget.yaml annotations of fields the module will add (IG applies the
        # metadata when a field is added); columns.hidden: "true" hides it
        self.field_annotations: dict[str, dict[str, str]] = {}

    @classmethod
    def from_spec(cls, spec: DataSourceSpec) -> DataSource:
        ds = cls(spec.name, spec.type, spec.tags, spec.annotations)
        ds.field_annotations = {k: dict(v) for k, v in spec.field_annotations.items()}
        for f in spec.fields:
            ds._add(Field(ds, f.name, Kind.parse(f.kind), f.size, f.tags, f.annotations,
                          FieldFlag.HIDDEN if f.hidden else FieldFlag.NONE, f.raw))
        return ds

    @property
    def is_array(self) -> bool:
        return self.type == DataSourceType.ARRAY

    def field(self, name: str) -> Field | None:
        """By exact name, else case-insensitively (as IG's GetField)."""
        f = self.fields.get(name)
        if f is not None:
            return f
        low = name.lower()
        for n, f in self.fields.items():
            if n.lower() == low:
                return f
        return None

    def add_field(self, name: str, kind: Kind, by_module: bool = True) -> Field:
        if name in self.fields:
            raise ValueError(f"field {name!r} already exists in data source {self.name!r}")
        ann = self.field_annotations.get(name, {})
        flags = FieldFlag.ADDED if by_module else FieldFlag.NONE
        if str(ann.get("columns.hidden", "")).lower() == "true":
            flags |= FieldFlag.HIDDEN
        return self._add(Field(self, name, kind, annotations=ann, flags=flags))

    def _add(self, f: Field) -> Field:
        self.fields[f.name] = f
        self._refresh()
        return f

    def mark_raw(self, names: Iterable[str]) -> None:
        """Text fields whose events carry the raw bytes (turned into text on the way out)."""
        for n in names:
            self.fields[n].raw = True
        self._refresh()

    def _refresh(self) -> None:
        self.fill = tuple((x.name, x.default) for x in self.fields.values() if x.added)
        self.raw_text = tuple(x.name for x in self.fields.values() if x.raw and x.kind.is_text)
        # the runtime shows bytes as hex text (JSON has no bytes): raw ones and added ones
        self.raw_hex = tuple(x.name for x in self.fields.values()
                             if x.kind == Kind.BYTES and (x.raw or x.added))
        self.defaults = {x.name: x.default for x in self.fields.values()}

    def subscribe(self, kind: SubscriptionKind, priority: int, target: Any, guest: bool,
                  ds_handle: int = 0) -> Subscription:
        kind = SubscriptionKind(kind)
        if kind == SubscriptionKind.ARRAY and not self.is_array:
            raise ValueError(f"data source {self.name!r} is not an array data source")
        self._seq += 1
        s = Subscription(int(priority), self._seq, kind, guest, target, ds_handle)
        self.subscriptions.append(s)
        self.subscriptions.sort(key=lambda x: (x.priority, x.seq))
        return s

    def new_event(self) -> dict[str, Any]:
        return dict(self.defaults)

    def __repr__(self) -> str:
        return (f"DataSource({self.name!r}, {self.type.name.lower()}, "
                f"{len(self.fields)} fields, {len(self.subscriptions)} subscriptions)")


def containers_datasource() -> DataSourceSpec:
    """IG's well-known "containers" data source (pkg/operators/common/containers-publisher):
    one packet per container event, event_type "CREATED" (also for the containers that
    exist when the gadget starts), "DELETED" or "PRECREATE". Modules such as traceloop
    subscribe to it; the runtime feeds it with WasmStage.emit("containers", {...})."""
    return DataSourceSpec("containers", [
        FieldSpec("event_type", Kind.STRING), FieldSpec("container_id", Kind.STRING),
        FieldSpec("cgroup_id", Kind.UINT64), FieldSpec("mntns_id", Kind.UINT64),
        FieldSpec("name", Kind.STRING), FieldSpec("container_config", Kind.STRING)],
        annotations={"cli.default-output-mode": "none"})
