"""The names ig's formatters and its ustack operator give a data source's events, from
the fields' types alone (no kernel): what the object model reports (``gadget validate``,
``gadget metadata``) and what the runtime's formatters and ustack stages add.

- ``struct gadget_l3endpoint_t P``: ``P.addr`` instead of ``P.addr_raw`` (and its members);
  ``struct gadget_l4endpoint_t P`` also ``P.proto`` (from ``P.proto_raw``).
- ``gadget_kernel_stack K_raw``: ``K`` (``ebpf.formatter.kstack`` names it otherwise).
- ``struct gadget_user_stack U``: ``U.addresses``, ``U.buildid``, ``U.symbols``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gadgetsmith.runtime.bpf.fields import Field

L3 = "gadget_l3endpoint_t"
L4 = "gadget_l4endpoint_t"
KSTACK = "gadget_kernel_stack"
USTACK = "gadget_user_stack"
KSTACK_TARGET = "ebpf.formatter.kstack"
USTACK_FIELDS = ("addresses", "buildid", "symbols")


@dataclass
class Endpoint:
    """An endpoint field ``name`` (its members are ``name.*``)."""

    name: str
    l4: bool  # has a port (and the column shows addr:port)
    proto: bool  # has proto_raw (l4 only)
    removed: set[str] = field(default_factory=set)

    @property
    def added(self) -> list[str]:
        return [f"{self.name}.addr"] + ([f"{self.name}.proto"] if self.proto else [])


@dataclass
class KernelStack:
    """A kernel stack id field ``name``, formatted into ``target`` ("" when neither its
    name ends in ``_raw`` nor an annotation names the target: then it is left alone)."""

    name: str
    target: str


@dataclass
class UserStack:
    """A ``struct gadget_user_stack`` field ``name``."""

    name: str

    @property
    def added(self) -> list[str]:
        return [f"{self.name}.{n}" for n in USTACK_FIELDS]


@dataclass
class Formatted:
    endpoints: list[Endpoint] = field(default_factory=list)
    kernel_stacks: list[KernelStack] = field(default_factory=list)
    user_stacks: list[UserStack] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        out = [n for e in self.endpoints for n in e.added]
        out += [k.target for k in self.kernel_stacks if k.target]
        return out + [n for u in self.user_stacks for n in u.added]

    @property
    def removed(self) -> set[str]:
        return {n for e in self.endpoints for n in e.removed}


def formatted(fields: list[Field], annotations: dict[str, dict[str, str]] | None = None) -> Formatted:
    """What ig's formatters do to a data source with these (flattened) ``fields``;
    ``annotations``: gadget.yaml's per-field annotations."""
    ann = annotations or {}
    names = {f.name for f in fields}
    out = Formatted()
    for f in fields:
        if f.kind == "struct" and (f.has_type(L3) or f.has_type(L4)):
            p = f.name
            if f"{p}.addr_raw.v6" not in names or f"{p}.version" not in names:
                continue  # not the SDK's layout: left as decoded
            l4 = f.has_type(L4) and f"{p}.port" in names
            gone = {n for n in names if n == f"{p}.addr_raw" or n.startswith(f"{p}.addr_raw.")}
            out.endpoints.append(Endpoint(p, l4, l4 and f"{p}.proto_raw" in names, gone))
        elif f.kind == "struct" and f.has_type(USTACK):
            out.user_stacks.append(UserStack(f.name))
        elif f.has_type(KSTACK) and f.kind == "uint32":
            target = ann.get(f.name, {}).get(KSTACK_TARGET, "")
            if not target and f.short_name.endswith("_raw"):
                target = f.short_name[: -len("_raw")]
            if target and "." not in target:
                target = f.sibling(target)
            out.kernel_stacks.append(KernelStack(f.name, target))
    return out


__all__ = ["KSTACK_TARGET", "Endpoint", "Formatted", "KernelStack", "UserStack", "formatted"]
