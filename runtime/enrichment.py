"""Container enrichment, precomputed once per container.

Every event from a container gets the same eleven ``runtime.*`` / ``k8s.*`` values. An
:class:`Enrichment` holds them twice: as a flat dict (merged into events that a filter,
a processor or a column printer reads) and as JSON text per top-level name (``"k8s"``,
``"runtime"``), which the JSON printer splices into its line without touching the event
dict. :class:`EnrichmentTable` maps a mount namespace id to its Enrichment with one dict
lookup; it is rebuilt when the container collection's generation changes, and read once
per batch of events (a container that appears is in the next batch's table).
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from .decode import nest

EMPTY_FIELDS: dict[str, Any] = {
    "runtime.containerName": "",
    "runtime.runtimeName": "",
    "runtime.containerId": "",
    "runtime.containerPid": 0,
    "runtime.containerImageName": "",
    "runtime.containerImageDigest": "",
    "runtime.containerStartedAt": "",
    "k8s.namespace": "",
    "k8s.podName": "",
    "k8s.containerName": "",
    "k8s.podLabels": {},
}

# the same encoder settings as the JSON printer's (sorted keys, ", " and ": ", ASCII)
_dumps = json.JSONEncoder(sort_keys=True).encode


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``Container.enrichment()`` -> dotted names (``k8s.podLabels`` stays one value)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "podLabels":
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
        self.json = {name: _dumps(value) for name, value in nested.items()}


EMPTY = Enrichment(EMPTY_FIELDS)


class EnrichmentTable:
    """mntns id -> :class:`Enrichment` for a container collection (EMPTY for the host
    and unknown namespaces). ``table`` is swapped whole when containers change; the event
    loop calls :meth:`current` once per batch and keeps its ``get``, so
    ``get(mntns, EMPTY)`` is all an event costs."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.generation = -1
        self.table: dict[int, Enrichment] = {}

    def current(self) -> dict[int, Enrichment]:
        coll = self.collection
        if coll.generation != self.generation:
            gen = coll.generation
            by_mntns = dict(coll._by_mntns)
            self.table = {m: Enrichment(flatten(c.enrichment())) for m, c in by_mntns.items()}
            self.generation = gen
        return self.table
