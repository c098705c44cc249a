"""Reports of case results: text (what a failing case shows), JSON and JUnit XML.

The failure text is what the author reads to fix a gadget or a spec: the expectation, how
many events came and how many matched, the closest event with the fields that differed
(expected vs got), and what the trigger ran and printed. ``gadget test``, the pytest
plugin and the JUnit ``<failure>`` body all show the same text.

JUnit XML is written with junitparser: one ``<testsuite>`` per spec file, one
``<testcase>`` per case (``classname`` is the gadget, ``name`` the case), ``<failure>``
for failed expectations, ``<error>`` for cases that could not run, ``<skipped>`` for
``skip:``. GitHub, GitLab and Jenkins read this shape.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.fsutil import atomic_write
from gadgetsmith.toolchain.testing.runner import ERROR, FAILED, PASSED, SKIPPED, CaseResult, ExpectationResult
from junitparser import Attr, Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

_WORD = {PASSED: "PASS", FAILED: "FAIL", ERROR: "ERROR", SKIPPED: "SKIP"}
MAX_EVENT_TEXT = 600


def _event_text(ev: dict[str, Any]) -> str:
    text = json.dumps(ev, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_EVENT_TEXT else text[:MAX_EVENT_TEXT] + " ...}"


def _value(v: Any) -> str:
    return json.dumps(v, default=str, ensure_ascii=False)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


def where(result: CaseResult) -> str:
    case = result.case
    line = case.line
    return f"{case.spec.label}:{line}" if line else case.spec.label


def headline(result: CaseResult) -> str:
    return (f"{_WORD[result.status]:5} {result.gadget}: {result.case.name} "
            f"({where(result)}, {result.duration:.1f} s)")


def expectation_lines(er: ExpectationResult, noun: str, datasource: str, events: int,
                      seconds: float) -> list[str]:
    """What a failed expectation shows: itself, the counts, the closest event's differing
    fields (atLeast) or the matching events (exactly/none)."""
    e = er.expectation
    lines = [f"expected {e.describe(noun)} from {datasource} matching:" if e.matchers
             else f"expected {e.describe(noun)} from {datasource}"]
    for m in e.matchers:
        lines.append(f"    {m.field} {m.describe(er.variables)}")
    seen = f"{events} {noun}{'s' * (events != 1)}"
    lines.append(f"got {er.count} matching of {seen} in {_seconds(seconds)}")
    if er.note:
        lines.append(f"note: {er.note}")
    if e.kind == "atLeast" and er.count < e.count and er.closest is not None:
        ev, outcomes = er.closest
        held = sum(1 for o in outcomes if o.holds)
        lines.append(f"closest {noun} ({held} of {len(outcomes)} matchers hold); differing:")
        for o in outcomes:
            if not o.holds:
                got = "(no such field)" if o.field not in ev else _value(o.got)
                lines.append(f"    {o.field}: expected {o.expected}, got {got}")
        lines.append(f"    {noun}: {_event_text(ev)}")
    elif er.examples:
        lines.append(f"matching {noun}s{' (first ones)' if er.count > len(er.examples) else ''}:")
        lines += [f"    {_event_text(ev)}" for ev in er.examples]
    elif e.kind == "atLeast" and events == 0:
        lines.append(f"no {noun} at all came from {datasource}: does the trigger do what the "
                     "gadget traces, and are params, filter and host/containers right?")
    return lines


def details(result: CaseResult) -> str:
    """The body under a failed or errored case's headline (empty when it passed)."""
    if result.status == SKIPPED:
        return f"skipped: {result.message}"
    if result.status == PASSED:
        return ""
    lines: list[str] = []
    if result.status == ERROR:
        lines.append(f"error: {result.message}")
    for er in result.expectations:
        if not er.ok:
            lines += expectation_lines(er, result.noun, result.datasource, result.events,
                                       result.collected_for)
    if result.trigger_log:
        lines.append("trigger:")
        for entry in result.trigger_log:
            lines += ["    " + line for line in entry.splitlines()]
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def format_result(result: CaseResult) -> str:
    body = details(result)
    if not body or result.status == SKIPPED:
        return headline(result) + (f" [{result.message}]" if result.status == SKIPPED else "")
    return headline(result) + "\n" + "\n".join("      " + line for line in body.splitlines())


def counts(results: Iterable[CaseResult]) -> dict[str, int]:
    out = {PASSED: 0, FAILED: 0, ERROR: 0, SKIPPED: 0}
    for r in results:
        out[r.status] += 1
    return out


def summary(results: list[CaseResult]) -> str:
    """``3 passed, 1 failed, 1 skipped`` (errors count as failed and are named after)."""
    c = counts(results)
    text = f"{c[PASSED]} passed, {c[FAILED] + c[ERROR]} failed"
    if c[SKIPPED]:
        text += f", {c[SKIPPED]} skipped"
    if c[ERROR]:
        text += f" ({c[ERROR]} of the failures {'are errors' if c[ERROR] > 1 else 'is an error'})"
    return text


# ---------------------------------------------------------------------------- JSON
def result_dict(r: CaseResult) -> dict[str, Any]:
    exps = []
    for er in r.expectations:
        d: dict[str, Any] = {
            "expect": er.expectation.describe(r.noun),
            "match": {m.field: m.describe(er.variables) for m in er.expectation.matchers},
            "ok": er.ok, "matching": er.count, "examples": er.examples,
        }
        if er.note:
            d["note"] = er.note
        if er.closest is not None and not er.ok:
            ev, outcomes = er.closest
            d["closest"] = {"event": ev, "fields": [
                {"field": o.field, "expected": o.expected, "got": o.got, "holds": o.holds}
                for o in outcomes]}
        exps.append(d)
    return {
        "file": r.case.spec.label, "line": r.case.line, "gadget": r.gadget, "case": r.case.name,
        "status": r.status, "message": r.message, "duration": round(r.duration, 3),
        "datasource": r.datasource, "events": r.events, "expectations": exps,
        "trigger": r.trigger_log, "warnings": r.warnings,
    }


def as_json(results: list[CaseResult]) -> dict[str, Any]:
    c = counts(results)
    return {"summary": {"cases": len(results), **c,
                        "duration": round(sum(r.duration for r in results), 3)},
            "results": [result_dict(r) for r in results]}


# ---------------------------------------------------------------------------- JUnit
class _JUnitCase(TestCase):
    """A testcase with the file and line attributes GitLab and GitHub annotators read."""

    file = Attr()
    line = Attr()


def junit_xml(results: list[CaseResult]) -> bytes:

    xml = JUnitXml("gadget test")
    suites: dict[str, TestSuite] = {}
    for r in results:
        label = r.case.spec.label
        suite = suites.get(label)
        if suite is None:
            suite = suites[label] = TestSuite(label)
            suite.add_property("gadget", r.gadget)
        tc = _JUnitCase(r.case.name, classname=r.gadget, time=round(r.duration, 3))
        tc.file = label
        if r.case.line:
            tc.line = str(r.case.line)
        if r.status == FAILED:
            f = Failure(r.message, "gadget test failure")
            f.text = details(r)
            tc.result = [f]
        elif r.status == ERROR:
            e = Error(r.message, "gadget test error")
            e.text = details(r)
            tc.result = [e]
        elif r.status == SKIPPED:
            tc.result = [Skipped(r.message)]
        suite.add_testcase(tc)
    for suite in suites.values():
        suite.time = round(sum(float(tc.time or 0) for tc in suite), 3)
        xml.add_testsuite(suite)
    xml.update_statistics()
    buf = io.BytesIO()
    xml.write(buf)
    return buf.getvalue()


def write_junit(results: list[CaseResult], path: Path | str) -> None:
    """Write the JUnit report atomically (temp file, fsync, rename)."""
    atomic_write(Path(path), junit_xml(results))
