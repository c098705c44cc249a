"""A gadget run driven from Python code: what the pytest fixture ``gadget_run`` returns.

    with LiveRun(prepare(GadgetSource("dir", "sample-gadgets/trace_open"))) as run:
        subprocess.run(["cat", "/missing"])
        run.expect(match={"fname": "/missing", "error": "ENOENT"}, timeout=5)

The gadget is loaded and attached when the run starts. Tracer events (and map-iterator
rows, read every ``interval``) are collected by a thread from then on, so what the test
does before calling :meth:`LiveRun.expect` is seen; snapshots are taken by ``expect``.
``expect`` uses the spec's matchers and normalization and raises AssertionError with the
same text ``gadget test`` prints for a failing case.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.gadget import Gadget
from gadgetsmith.toolchain.testing.gadgets import PreparedGadget
from gadgetsmith.toolchain.testing.report import expectation_lines
from gadgetsmith.toolchain.testing.runner import ExpectationResult, Tracker
from gadgetsmith.toolchain.testing.spec import GadgetSource, NormalizeSpec, SpecError, expectation_from


def source_for(gadget: str, base: Path) -> GadgetSource:
    """A directory (relative to ``base``, then to the current directory) or a reference."""
    for d in (base / gadget, Path(gadget)):
        if d.is_dir():
            return GadgetSource("dir", str(d.resolve()))
    return GadgetSource("ref", gadget)


class LiveRun:
    def __init__(self, gadget: PreparedGadget, *, params: dict[str, Any] | None = None,
                 datasource: str | None = None, filter: str | None = None, host: bool = True,
                 selector: Any = None, normalize: dict[str, list[str]] | None = None,
                 interval: float = 1.0) -> None:
        self.gadget = gadget
        self.ds = gadget.datasource(datasource)
        self.params = {k: ("true" if v is True else "false" if v is False else str(v))
                       for k, v in (params or {}).items()}
        self.filter = filter
        self.host = host
        self.selector = selector
        norm = normalize or {}
        self.normalizer = NormalizeSpec(tuple(norm.get("mask", ())), tuple(norm.get("drop", ()))
                                        ).resolve(self.ds.field_names(not host))
        self.interval = interval
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.g: Any = None
        self._started_at = 0.0

    # -- lifecycle
    def start(self) -> LiveRun:
        if self.g is not None:
            return self
        self.g = Gadget(self.gadget.data, metadata=self.gadget.metadata, params=self.params,
                        filter=self.filter, host=self.host, selector=self.selector,
                        btfgen_layer=self.gadget.btfgen_layer, wasm=self.gadget.wasm)
        self._started_at = time.monotonic()
        if self.ds.kind != "iterator":
            self._thread = threading.Thread(target=self._read, name="gadget-run-reader", daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        try:
            while not self._stop.is_set():
                if self.ds.kind == "tracer":
                    batch = list(self.g.events(timeout=0.1, datasource=self.ds.name))
                else:
                    if self._stop.wait(self.interval):
                        return
                    batch = self.g.drain(self.ds.name)
                if batch:
                    with self._cond:
                        self._events += [self.normalizer(ev) for ev in batch]
                        self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - handed to the test by expect()
            self._error = e

    def close(self) -> None:
        self._stop.set()
        if self.g is not None:
            self.g.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.g is not None:
            self.g.close()
            self.g = None

    def __enter__(self) -> LiveRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading
    @property
    def events(self) -> list[dict[str, Any]]:
        """Events (or map-iterator rows) collected so far, normalized."""
        with self._cond:
            return list(self._events)

    def snapshot(self) -> list[dict[str, Any]]:
        self.start()
        return [self.normalizer(ev) for ev in self.g.snapshot(self.ds.name)]

    def expect(self, match: dict[str, Any] | None = None, *, at_least: int | None = None,
               exactly: int | None = None, none: bool = False, timeout: float = 5.0,
               settle: float = 0.5) -> ExpectationResult:
        """Wait until the events satisfy the expectation (the spec's ``expect`` entry:
        ``match`` and one of at_least / exactly / none); AssertionError when ``timeout``
        seconds pass first. ``exactly`` and ``none`` are counted after ``settle`` seconds."""
        data: dict[str, Any] = {"match": match or {}}
        if at_least is not None:
            data["atLeast"] = at_least
        if exactly is not None:
            data["exactly"] = exactly
        if none:
            data["none"] = True
        try:
            exp = expectation_from(data)
        except SpecError as e:  # the lines, not the one-line summary meant for the CLI
            raise ValueError("\n".join(d.format() for d in e.diagnostics)) from None
        self.start()
        end = time.monotonic() + timeout
        settle_end = time.monotonic() + settle
        tracker = Tracker(exp)
        seen = 0
        while True:
            if self.ds.kind == "iterator":
                tracker = Tracker(exp)
                rows = self.snapshot()
                for ev in rows:
                    tracker.add(ev, {}, set())
                seen = len(rows)
            else:
                with self._cond:
                    new = self._events[seen:]
                    seen = len(self._events)
                for ev in new:
                    tracker.add(ev, {}, set())
            if self._error is not None:
                raise self._error
            now = time.monotonic()
            if tracker.exceeded:
                break
            if exp.waits_for_end:
                if now >= settle_end:
                    break
            elif tracker.satisfied:
                break
            if now >= end:
                break
            if self.ds.kind == "iterator":
                time.sleep(min(0.5, max(0.0, end - now)))
            else:
                with self._cond:
                    self._cond.wait(min(0.1, max(0.0, end - now)))
        result = ExpectationResult(exp, tracker.satisfied, tracker.count, list(tracker.examples),
                                   tracker.closest({}), {})
        if not result.ok:
            lines = expectation_lines(result, self.ds.noun, self.ds.name, seen,
                                      time.monotonic() - self._started_at)
            raise AssertionError(f"{self.gadget.label}: " + "\n".join(lines))
        return result
