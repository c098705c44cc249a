"""`gadget run -o json` prints a batch of events at once (Printer.events): the text must be
what printing them one by one gives, whatever the events hold: key sets that change,
values whose type differs from the template's, text the template cannot take, events
with and without container fields, and nested names."""

from __future__ import annotations

import io

from gadgetsmith.runtime.events.decode import Column
from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS, Enrichment
from gadgetsmith.runtime.events.output import Printer

COLUMNS = [Column("proc.comm"), Column("proc.pid"), Column("fname"), Column("error_raw"),
           Column("size")]
CONTAINER = Enrichment({**EMPTY_FIELDS, "runtime.containerName": "web", "k8s.podLabels": "a=b"})


def _events() -> list[dict[str, object]]:
    base = {"proc.comm": "cat", "proc.pid": 42, "fname": "/etc/hostname", "error_raw": 0}
    return [
        dict(base), dict(base, fname="/tmp/caf\u00e9 \"q\"\n"), dict(base, proc={"pid": 1}) | {},
        dict(base, size=1.5), dict(base, size=2**70), {"proc.comm": "sh", "proc.pid": 7},
        dict(base, error_raw="not an int"), dict(base, fname=None), dict(base), dict(base),
    ]


def _one_by_one(events, extras) -> str:
    out = io.StringIO()
    p = Printer("json", COLUMNS, out=out, autoflush=False)
    for ev, extra in zip(events, extras or [None] * len(events), strict=True):
        p.event(dict(ev), extra)
    return out.getvalue()


def _batched(events, extras, size: int) -> str:
    out = io.StringIO()
    p = Printer("json", COLUMNS, out=out, autoflush=False)
    for i in range(0, len(events), size):
        p.events([dict(e) for e in events[i:i + size]], None if extras is None else extras[i:i + size])
    return out.getvalue()


def test_a_batch_prints_as_its_events_one_by_one() -> None:
    events = _events() * 3
    for extras in (None, [CONTAINER] * len(events),
                   [CONTAINER if i % 3 else None for i in range(len(events))]):
        expected = _one_by_one(events, extras)
        assert expected.count("\n") == len(events)
        for size in (1, 4, len(events)):
            assert _batched(events, extras, size) == expected
    assert '"runtime":{' in _one_by_one(events, [CONTAINER] * len(events))
