"""Normalization of events before they are matched and shown, the way IG's test
normalizers zero what varies from run to run.

``mask`` replaces a field's value by ``"<present>"`` when it is set (and leaves 0 or ""
alone), so a report shows *that* a pid was there, not which; ``drop`` removes the field.
Entries are field names, shell-style patterns (``proc.parent.*``) or groups:

- ``@pids``: pid, tid and ppid fields (``proc.pid``, ``proc.parent.tid`` ...) and
  ``runtime.containerPid``;
- ``@timestamps``: ``timestamp``, ``timestamp_raw`` and the like, and
  ``runtime.containerStartedAt``;
- ``@namespaces``: mount and network namespace ids (``proc.mntns_id``, ``netns_id`` ...);
- ``@containers``: ``runtime.containerId``, ``runtime.containerPid``,
  ``runtime.containerImageDigest``, ``runtime.containerStartedAt``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.toolchain.testing.matchers import MASKED, is_set

GROUPS = ("@pids", "@timestamps", "@namespaces", "@containers")
_CONTAINER_FIELDS = ("runtime.containerId", "runtime.containerPid",
                     "runtime.containerImageDigest", "runtime.containerStartedAt")


def group_members(group: str, names: Iterable[str]) -> set[str]:
    """The fields of ``names`` that ``group`` covers."""
    out = set()
    for n in names:
        last = n.rsplit(".", 1)[-1]
        if group == "@pids":
            hit = last in ("pid", "tid", "ppid") or n == "runtime.containerPid"
        elif group == "@timestamps":
            hit = last.startswith("timestamp") or n == "runtime.containerStartedAt"
        elif group == "@namespaces":
            hit = last in ("mntns_id", "netns_id", "mntns", "netns")
        else:
            hit = n in _CONTAINER_FIELDS
        if hit:
            out.add(n)
    return out


def resolve(entry: str, names: Iterable[str]) -> set[str]:
    """The fields of ``names`` an entry of mask/drop covers (may be empty)."""
    names = list(names)
    if entry.startswith("@"):
        return group_members(entry, names)
    if any(ch in entry for ch in "*?["):
        return {n for n in names if fnmatch.fnmatchcase(n, entry)}
    return {entry} if entry in names else set()


@dataclass
class Normalizer:
    masked: frozenset[str] = frozenset()
    dropped: frozenset[str] = frozenset()
    #: entries as written, for reports
    spec: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.masked or self.dropped)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        if not self:
            return event
        out = {k: v for k, v in event.items() if k not in self.dropped}
        for k in self.masked:
            if k in out and is_set(out[k]):
                out[k] = MASKED
        return out
