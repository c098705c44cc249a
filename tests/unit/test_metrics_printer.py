"""metrics.print of a tracer's counters: ig prints on a ticker, so a tracer's metrics are
printed at most once per interval, and what changed since waits for the next idle
moment after it (runtime/events/metrics.py)."""

from __future__ import annotations

import io

from gadgetsmith.runtime.events.metrics import HistogramPrinter, Scalar


def test_a_tracers_metrics_wait_for_their_interval() -> None:
    out = io.StringIO()
    p = HistogramPrinter([Scalar("", "events_total"), Scalar("calls", "calls")], [], out)
    p.interval = 3600.0
    p.events([{"calls": 1}])
    assert out.getvalue() == "events_total\ncalls\n"  # the first batch prints at once
    p.events([{"calls": 1}])
    p.flush()
    assert out.getvalue() == "events_total\ncalls\n"  # within the interval: not again
    p.interval = 0.0
    p.flush()
    assert out.getvalue() == "events_total\ncalls\n" * 2  # pending, printed when idle
    p.flush()
    assert out.getvalue() == "events_total\ncalls\n" * 2  # nothing new: nothing printed


def test_a_counter_is_printed_once_an_event_had_it() -> None:
    out = io.StringIO()
    p = HistogramPrinter([Scalar("calls", "calls"), Scalar("level", "last_level")], [], out)
    p.batch([{"calls": 1}])
    assert out.getvalue() == "calls\n"
