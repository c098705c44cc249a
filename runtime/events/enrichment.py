"""Container enrichment, precomputed once per container.

Every event from a container gets the same fifteen ``runtime.*`` / ``k8s.*`` values (ig's). An
:class:`Enrichment` holds them twice: as a flat dict (merged into events that a filter,
a processor or a column printer reads) and as JSON text per top-level name (``"k8s"``,
``"runtime"``), which the JSON printer splices into its line without touching the event
dict. :class:`EnrichmentTable` maps a mount namespace id to its Enrichment with one dict
lookup; it is rebuilt when the container collection's generation changes, and read once
per batch of events (a container that appears is in the next batch's table). A second
table maps a network namespace id (for data sources without a mount namespace id): when
several containers share that namespace (a pod), its Enrichment holds only the fields
they all agree on, the others empty; the host's network namespace is never in it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from gadgetsmith.runtime.events.decode import nest
from gadgetsmith.runtime.events.output import dumps  # the JSON printer's own encoder

EMPTY_FIELDS: dict[str, Any] = {
    "runtime.containerName": "",
    "runtime.runtimeName": "",
    "runtime.containerId": "",
    "runtime.containerPid": 0,
    "runtime.containerImageName": "",
    "runtime.containerImageDigest": "",
    "runtime.containerStartedAt": 0,
    "k8s.namespace": "",
    "k8s.podName": "",
    "k8s.containerName": "",
    "k8s.podLabels": "",
    "k8s.hostnetwork": False,
    "k8s.node": "",
    "k8s.owner.kind": "",
    "k8s.owner.name": "",
}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``Container.enrichment()`` -> dotted names (``k8s.owner.kind``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Enrichment:
    """One container's enrichment: ``fields`` (flat, read-only) and ``json`` (top-level
    name -> that object's JSON text, as the printer would write it). ``plain`` holds the
    same fields as a plain dict for merging into events: ``ev.update(plain)`` takes
    CPython's dict fast path, about half the cost of ``ev.update(fields)``; do not modify
    it."""

    __slots__ = ("fields", "json", "plain")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.plain = dict(fields)
        self.fields = MappingProxyType(self.plain)
        nested = nest(dict(fields))
        self.json = {name: dumps(value) for name, value in nested.items()}


EMPTY = Enrichment(EMPTY_FIELDS)


def shared_fields(containers: Any) -> dict[str, Any]:
    """The flat enrichment fields every one of ``containers`` has the same value for; the
    others get their empty value (e.g. the pod's k8s.* fields, no containerName)."""
    flats = [flatten(c.enrichment()) for c in containers]
    first, rest = flats[0], flats[1:]
    return {k: v if all(f.get(k) == v for f in rest) else EMPTY_FIELDS[k]
            for k, v in first.items()}


class EnrichmentTable:
    """mntns id -> :class:`Enrichment` (``table``) and netns id -> :class:`Enrichment`
    (``net_table``) for a container collection (EMPTY for the host and unknown
    namespaces). Both are swapped whole when containers change; the event loop calls
    :meth:`current` (or :meth:`current_netns`) once per batch and keeps its ``get``, so
    ``get(ns, EMPTY)`` is all an event costs."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.generation = -1
        self.table: dict[int, Enrichment] = {}
        self.net_table: dict[int, Enrichment] = {}

    def _rebuild(self) -> None:
        gen, by_mntns, by_netns = self.collection.namespaces()
        table = {m: Enrichment(flatten(c.enrichment())) for m, c in by_mntns.items()}
        own = {c.id: table[m] for m, c in by_mntns.items()}
        net: dict[int, Enrichment] = {}
        for n, cs in by_netns.items():
            if len(cs) == 1 and cs[0].id in own:
                net[n] = own[cs[0].id]  # a container alone in its netns: its own fields
            else:
                net[n] = Enrichment(shared_fields(cs))
        self.table, self.net_table = table, net
        self.generation = gen

    def current(self) -> dict[int, Enrichment]:
        if self.collection.generation != self.generation:
            self._rebuild()
        return self.table

    def current_netns(self) -> dict[int, Enrichment]:
        if self.collection.generation != self.generation:
            self._rebuild()
        return self.net_table
