"""Run cases: load the gadget, trigger, collect until the expectations hold, detach.

Each case gets its own :class:`~gadgetsmith.runtime.Gadget` (in this process, through
the runtime's Python API), loaded and attached before the trigger starts and closed in a
``finally``, so links, readers and maps are gone when the case returns, whether it
passed, failed, timed out or was interrupted. How events are collected depends on the
data source:

- tracer: events are read as they come; the case ends as soon as every ``atLeast``
  holds (and, for ``exactly``/``none``, the trigger ended and ``settle`` passed), when an
  ``exactly``/``none`` is already exceeded, or at the time limit;
- map iterator (top gadgets): the map is read every ``interval``; each row counts like an
  event ("within T seconds a row where count >= N");
- iterator (snapshots): once the trigger's foreground steps ended, a snapshot is taken
  every ``interval`` until one satisfies every expectation or the time limit ends.

Matching runs on normalized events. Templated matchers (``{{ trigger.pid }}``) are
re-evaluated whenever the trigger learns a new pid, so an event read before its
process's pid was recorded still counts.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.runtime.containers.collection import (
    ContainerCollection,
    ContainerError,
    ContainerSelector,
    default_sources,
)
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.gadget import Gadget
from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.testing.gadgets import DataSourceFields, PreparedGadget
from gadgetsmith.toolchain.testing.matchers import FieldMatcher, MatchError
from gadgetsmith.toolchain.testing.normalize import Normalizer
from gadgetsmith.toolchain.testing.spec import Case, Expectation
from gadgetsmith.toolchain.testing.templates import Vars
from gadgetsmith.toolchain.testing.triggers import CaseContainer, Podman, Trigger, TriggerError

MAX_CANDIDATES = 20_000  # recent events kept per expectation for re-evaluation
EXAMPLES = 3  # matching events kept to show why exactly/none failed
RECENT = 2_000  # events scored again for the closest one when the trigger's values change
DEFAULT_MAP_INTERVAL = 1.0
DEFAULT_SNAPSHOT_INTERVAL = 0.5

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"


class CaseError(GadgetError):
    """A case that could not run as written (the gadget does not load, a trigger cannot
    start, a template has no value): reported as an error, not a failure."""


class Interrupted(GadgetError):
    """The run was cancelled (Ctrl-C, SIGTERM) while this case ran (exit 130, as any command
    Ctrl-C stops)."""

    exit_code = 130

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message)


# ---------------------------------------------------------------------------- matching
@dataclass
class FieldOutcome:
    field: str
    expected: str
    got: Any
    holds: bool


@dataclass
class Tracker:
    """How far one expectation got: matching count, candidates, closest event.

    Events that pass the matchers without templates are kept (the last
    :data:`MAX_CANDIDATES`) so the templated ones can be evaluated again when the
    trigger's values change; an event pushed out keeps the verdict it had then."""

    expectation: Expectation
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    #: [event, matched] of the recent candidates
    candidates: deque[list[Any]] = field(default_factory=deque, repr=False)
    evicted: int = 0  # candidates pushed out of the window while they matched
    #: the last events of all, scored again for the closest event when the values change
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT), repr=False)
    best: tuple[tuple[int, int], dict[str, Any]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ms = self.expectation.matchers
        self.static = [m for m in ms if not m.templated]
        self.dynamic = [m for m in ms if m.templated]
        self._static = [_compiled(m, {}) for m in self.static]
        self._vars: Vars | None = None
        self._dynamic: list[Callable[[dict[str, Any]], bool]] = []

    def _dynamic_for(self, variables: Vars) -> list[Callable[[dict[str, Any]], bool]]:
        if variables is not self._vars:
            self._dynamic = [_compiled(m, variables) for m in self.dynamic]
            self._vars = variables
        return self._dynamic

    @property
    def satisfied(self) -> bool:
        e = self.expectation
        return self.count >= e.count if e.kind == "atLeast" else self.count == e.count

    @property
    def exceeded(self) -> bool:
        e = self.expectation
        return e.kind != "atLeast" and self.count > e.count

    def add(self, ev: dict[str, Any], variables: Vars, pids: set[int]) -> None:
        s = sum(1 for p in self._static if p(ev))
        d = sum(1 for p in self._dynamic_for(variables) if p(ev))
        matched = s == len(self.static) and d == len(self.dynamic)
        if s == len(self.static) and self.dynamic:
            self.candidates.append([ev, matched])
            if len(self.candidates) > MAX_CANDIDATES:
                if self.candidates.popleft()[1]:
                    self.evicted += 1
        if matched:
            self._matched(ev)
        if self.dynamic:
            self.recent.append(ev)
        self._consider(s + d, ev, pids)

    def revise(self, variables: Vars, pids: set[int]) -> None:
        """Recount after the templates' values changed (a new trigger pid)."""
        if not self.dynamic:
            return
        self.count = self.evicted
        self.examples.clear()
        n_dynamic = len(self.dynamic)
        preds = self._dynamic_for(variables)
        for c in self.candidates:
            d = sum(1 for p in preds if p(c[0]))
            c[1] = d == n_dynamic
            if c[1]:
                self._matched(c[0])
        pool = list(self.recent)
        if self.best is not None:
            pool.append(self.best[1])  # it may be older than the recent ones
        self.best = None
        for ev in pool:
            score = sum(1 for p in self._static if p(ev)) + sum(1 for p in preds if p(ev))
            self._consider(score, ev, pids)

    def _matched(self, ev: dict[str, Any]) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(ev)

    def _consider(self, score: int, ev: dict[str, Any], pids: set[int]) -> None:
        best = self.best
        if best is not None and score < best[0][0]:
            return
        key = (score, int(_pid_of(ev) in pids))  # ties: the trigger's own event
        if best is None or key > best[0]:
            self.best = (key, ev)

    def closest(self, variables: Vars) -> tuple[dict[str, Any], list[FieldOutcome]] | None:
        if self.best is None:
            return None
        ev = self.best[1]
        return ev, [FieldOutcome(m.field, m.describe(variables), ev.get(m.field),
                                 _holds(m, ev, variables)) for m in self.expectation.matchers]


def _pid_of(ev: dict[str, Any]) -> int:
    v = ev.get("proc.pid", ev.get("pid"))
    return v if isinstance(v, int) else -1


def _compiled(m: FieldMatcher, variables: Vars) -> Callable[[dict[str, Any]], bool]:
    """``m`` as a predicate for ``variables``; never holds while a trigger value it
    names is not known yet."""
    try:
        return m.compile(variables)
    except KeyError as e:
        name = e.args[0]
        if str(name).startswith("env."):
            raise CaseError(f"{{{{ {name} }}}}: environment variable {name[4:]} is not set") from None
        return lambda ev: False
    except MatchError as e:
        raise CaseError(f"match.{m.field}: {e}") from None


def _holds(m: FieldMatcher, ev: dict[str, Any], variables: Vars) -> bool:
    return _compiled(m, variables)(ev)


# ---------------------------------------------------------------------------- results
@dataclass
class ExpectationResult:
    expectation: Expectation
    ok: bool
    count: int
    examples: list[dict[str, Any]]
    closest: tuple[dict[str, Any], list[FieldOutcome]] | None
    variables: dict[str, list[str]] = field(repr=False, default_factory=dict)
    note: str = ""


@dataclass
class CaseResult:
    case: Case
    gadget: str  # label of the gadget under test
    status: str = PASSED
    duration: float = 0.0
    message: str = ""  # one line: why it failed, errored or was skipped
    datasource: str = ""
    noun: str = "event"
    events: int = 0  # events (or rows) read
    collected_for: float = 0.0  # seconds between attach and the end of collection
    expectations: list[ExpectationResult] = field(default_factory=list)
    trigger_log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (PASSED, SKIPPED)


# ---------------------------------------------------------------------------- running
def _base_variables(case: Case) -> dict[str, list[str]]:
    return {"case.id": [uuid.uuid4().hex[:12]], "case.name": [case.name],
            "spec.dir": [str(case.spec.directory.resolve())]}


def _render(t, variables: Vars, what: str) -> str:
    try:
        return t.render(variables)[0]
    except KeyError as e:
        raise CaseError(f"{what}: {{{{ {e.args[0]} }}}} has no value") from None


class _Collector:
    def __init__(self, case: Case, trackers: list[Tracker], trigger: Trigger,
                 normalizer: Normalizer) -> None:
        self.case = case
        self.trackers = trackers
        self.trigger = trigger
        self.normalize = normalizer
        self.version = -1
        self.variables: dict[str, list[str]] = {}
        self.pids: set[int] = set()
        self.events = 0
        self.timed_out = False  # collection ended at the time limit, not because it was done
        self.refresh()

    def refresh(self) -> None:
        """Pick up new trigger values; re-evaluate what was collected when they changed."""
        if self.trigger.version == self.version:
            return
        self.version = self.trigger.version
        self.variables = self.trigger.variables()
        self.pids = self.trigger.pid_set
        for t in self.trackers:
            t.revise(self.variables, self.pids)

    def feed(self, ev: dict[str, Any]) -> None:
        self.events += 1
        ev = self.normalize(ev)
        for t in self.trackers:
            t.add(ev, self.variables, self.pids)

    def end_reached(self, now: float) -> bool:
        """The trigger ended and settle passed (never without a trigger: the time limit)."""
        if not self.case.steps or not self.trigger.finished.is_set():
            return False
        return now >= (self.trigger.finished_at or now) + self.case.settle

    def done(self, now: float) -> bool:
        if self.trigger.error or any(t.exceeded for t in self.trackers):
            return True
        if self.case.steps and not (self.trigger.runs or self.trigger.finished.is_set()):
            return False  # not before the trigger ran once: a trigger that cannot start fails
        if not all(t.satisfied for t in self.trackers if t.expectation.kind == "atLeast"):
            return False
        if any(t.expectation.waits_for_end for t in self.trackers):
            return self.end_reached(now)
        return True


def run_case(case: Case, gadget: PreparedGadget, *, cancel: threading.Event | None = None,
             podman: Podman | None = None, on_warning: Callable[[str], None] | None = None,
             ) -> CaseResult:
    """Run one case against a prepared gadget; never raises for the case's own problems
    (they are the result's status and message). Needs root to load the gadget."""
    ds = gadget.datasource(case.datasource)
    result = CaseResult(case, gadget.label, datasource=ds.name, noun=ds.noun)
    start = time.monotonic()
    if case.skip:
        result.status, result.message = SKIPPED, case.skip
        return result
    run = _CaseRun(case, gadget, ds, result, cancel or threading.Event(), on_warning)
    try:
        run.start(podman)
        run.collect()
    except CaseError as e:
        result.status, result.message = ERROR, str(e)
    except TriggerError as e:
        result.status, result.message = ERROR, str(e)
    except Interrupted:
        result.status, result.message = ERROR, "interrupted"
    except GadgetError as e:
        result.status, result.message = ERROR, e.message
    finally:
        run.close()
        result.duration = time.monotonic() - start
    return result


class _CaseRun:
    """One case's container, gadget and trigger: started in that order, closed in reverse."""

    def __init__(self, case: Case, gadget: PreparedGadget, ds: DataSourceFields, result: CaseResult,
                 cancel: threading.Event, on_warning: Callable[[str], None] | None) -> None:
        self.case, self.gadget, self.ds, self.result = case, gadget, ds, result
        self.cancel = cancel
        self.on_warning = on_warning
        self.container: CaseContainer | None = None
        self.trigger: Trigger | None = None
        self.g: Gadget | None = None
        self.collection: Any = None  # a ContainerCollection when the case selects containers
        self.variables: dict[str, list[str]] = {}
        self.lost = 0

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    def _on_lost(self, n: int, _ds: str) -> None:
        self.lost += n

    def start(self, podman: Podman | None) -> None:
        """The case's container (if any), then the gadget loaded with the case's params."""
        case, gadget = self.case, self.gadget
        self.variables = _base_variables(case)
        if case.container is not None:
            self.container = CaseContainer(case.container, podman or Podman())
            self.container.start(self.variables)
            self.variables.update(self.container.variables())
        host, selector, self.collection = _selection(case, self.container)
        params = {k: _render(t, self.variables, f"params.{k}") for k, t in case.params.items()}
        filter_ = (_render(case.filter, self.variables, "filter")
                   if case.filter is not None else None)
        try:
            self.g = Gadget(gadget.data, metadata=gadget.metadata, params=params, filter=filter_,
                            host=host, selector=selector, containers=self.collection,
                            on_warning=self.warn, on_lost=self._on_lost,
                            btfgen_layer=gadget.btfgen_layer, wasm=gadget.wasm)
        except RuntimeGadgetError as e:
            raise CaseError(f"the gadget did not load: {e}") from None
        if self.container is not None:
            _wait_until_listed(self.collection, self.container)

    def collect(self) -> None:
        """Start the trigger, read events until the expectations hold or time is up, judge."""
        case, ds, result = self.case, self.ds, self.result
        assert self.g is not None
        attached = time.monotonic()
        trackers = [Tracker(e) for e in case.expectations]
        normalizer = case.normalize.resolve(ds.field_names(case.needs_containers))
        self.trigger = Trigger(case.steps, self.variables, case.spec.directory, self.container,
                               self.cancel).start()
        collector = _Collector(case, trackers, self.trigger, normalizer)
        deadline = attached + case.timeout
        try:
            if ds.kind == "tracer":
                _collect_tracer(self.g, ds, collector, deadline, self.cancel)
            elif ds.kind == "mapiter":
                _collect_rounds(self.g, ds, collector, deadline, self.cancel,
                                case.interval or DEFAULT_MAP_INTERVAL)
            else:
                trackers = _collect_snapshots(self.g, ds, collector, deadline, self.cancel,
                                              case.interval or DEFAULT_SNAPSHOT_INTERVAL)
        except RuntimeGadgetError as e:
            raise CaseError(f"reading the gadget failed: {e}") from None
        result.collected_for = time.monotonic() - attached
        result.events = collector.events
        if self.lost:
            self.warn(f"{self.lost} records were lost (the reader fell behind the kernel): an "
                      "event the case looked for may be among them; narrow it with params or "
                      "filter")
        collector.refresh()
        if self.trigger.error:
            raise CaseError(self.trigger.error)
        _judge(result, trackers, collector)

    def close(self) -> None:
        if self.trigger is not None:
            self.trigger.stop()
            self.result.trigger_log = self.trigger.log()
            self.trigger.close()
        if self.g is not None:
            self.g.close()
        if self.collection is not None:
            self.collection.stop()
        if self.container is not None:
            self.container.remove()


def _wait_until_listed(collection: ContainerCollection, container: CaseContainer,
                       limit: float = 15.0) -> None:
    """The case's container must be in the collection (so in the gadget's mount namespace
    filter) before the trigger runs; a listing can miss it, e.g. when another container
    disappears between podman's ps and inspect."""
    end = time.monotonic() + limit
    while not any(c.id == container.id for c in collection.containers()):
        if time.monotonic() > end:
            errors = "; ".join(collection.errors[-2:]) or "no error reported"
            raise CaseError(f"the container runtime did not list container {container.name} "
                            f"within {limit:g} s ({errors})")
        time.sleep(0.2)
        collection.refresh()


def _selection(case: Case, container: CaseContainer | None) -> tuple[bool, Any, Any]:
    """(host, selector, container collection) for the Gadget."""
    if not case.needs_containers:
        return True, None, None
    sel = case.selector or {}
    selector = ContainerSelector(sel.get("containerName", ""), sel.get("k8sNamespace", ""),
                                 sel.get("k8sPodName", ""), sel.get("k8sContainerName", ""),
                                 sel.get("runtimes", ""), sel.get("k8sSelector", ""))
    if container is not None and not case.selector:
        selector = ContainerSelector(container.name, runtimes="podman")
    try:
        selector.validate()
        runtimes = [r for r in selector.runtimes.split(",") if r.strip()] or None
        sources = default_sources(runtimes)
    except ContainerError as e:
        raise CaseError(str(e)) from None
    host = case.host if case.host is not None else not (case.selector or container is not None)
    return host, (None if host else selector), ContainerCollection(sources)


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise Interrupted


def _collect_tracer(g: Any, ds: DataSourceFields, c: _Collector, deadline: float,
                    cancel: threading.Event) -> None:
    while True:
        _check_cancel(cancel)
        c.refresh()
        now = time.monotonic()
        if c.done(now):
            return
        if now >= deadline:
            c.timed_out = True
            return
        n = 0
        for ev in g.events(timeout=min(0.2, deadline - now), datasource=ds.name):
            c.feed(ev)
            n += 1
            if n % 64 == 0:
                c.refresh()
                if c.done(time.monotonic()) or cancel.is_set():
                    break
            elif any(t.exceeded for t in c.trackers):
                break


def _sleep_until(t: float, c: _Collector, cancel: threading.Event) -> None:
    while True:
        _check_cancel(cancel)
        left = t - time.monotonic()
        if left <= 0:
            return
        cancel.wait(min(left, 0.05))


def _collect_rounds(g: Any, ds: DataSourceFields, c: _Collector, deadline: float,
                    cancel: threading.Event, interval: float) -> None:
    next_read = time.monotonic() + interval
    while True:
        _sleep_until(min(next_read, deadline), c, cancel)
        for row in g.drain(ds.name):
            c.feed(row)
        next_read += interval
        c.refresh()
        now = time.monotonic()
        if c.done(now):
            return
        if now >= deadline:
            c.timed_out = True
            return


def _collect_snapshots(g: Any, ds: DataSourceFields, c: _Collector, deadline: float,
                       cancel: threading.Event, interval: float) -> list[Tracker]:
    """Snapshots until one satisfies every expectation; the trackers of the last one."""
    while not c.trigger.finished.is_set() and c.case.steps:
        _check_cancel(cancel)
        if time.monotonic() >= deadline:
            break
        c.trigger.finished.wait(0.05)
    while True:
        _check_cancel(cancel)
        c.trackers = [Tracker(t.expectation) for t in c.trackers]
        c.version = -1  # fresh trackers: take the current trigger values
        c.refresh()
        for row in g.snapshot(ds.name):
            c.feed(row)
        if c.trigger.error or all(t.satisfied for t in c.trackers):
            return c.trackers
        if time.monotonic() + interval > deadline:
            c.timed_out = True
            return c.trackers
        _sleep_until(time.monotonic() + interval, c, cancel)


def _judge(result: CaseResult, trackers: list[Tracker], c: _Collector) -> None:
    unfinished = bool(c.case.steps) and not c.trigger.finished.is_set() and c.timed_out
    failed = []
    for t in trackers:
        ok = t.satisfied
        note = ""
        if t.expectation.waits_for_end and unfinished and not t.exceeded:
            ok, note = False, (f"the time limit ({c.case.timeout:g} s) ended before the trigger "
                               "finished, so the count is not final")
        elif not ok and unfinished:
            note = f"the trigger was still running at the time limit ({c.case.timeout:g} s)"
        er = ExpectationResult(t.expectation, ok, t.count, list(t.examples),
                               t.closest(c.variables), c.variables, note)
        result.expectations.append(er)
        if not ok:
            failed.append(er)
    if failed:
        result.status = FAILED
        first = failed[0]
        what = result.noun
        result.message = (f"expected {first.expectation.describe(what)} matching, got "
                          f"{first.count} (of {result.events} {what}{'s' * (result.events != 1)})")


# ---------------------------------------------------------------------------- many cases
@dataclass
class Planned:
    """A case and the gadget it runs against (``prepare_error``: why it could not be built)."""

    case: Case
    gadget: PreparedGadget | None
    prepare_error: str = ""
    gadget_label: str = ""
    key: Any = None  # what identifies the gadget (its GadgetSource): cases of one run in order


def run_planned(planned: Iterable[Planned], *, jobs: int = 1, cancel: threading.Event | None = None,
                on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Run cases: those of one gadget in order, different gadgets on up to ``jobs``
    threads. Results come back in the planned order; ``on_result`` sees each as it ends."""
    items = list(planned)
    cancel = cancel or threading.Event()
    results: dict[int, CaseResult] = {}
    lock = threading.Lock()

    def one(i: int, p: Planned) -> None:
        if cancel.is_set():
            r = CaseResult(p.case, p.gadget_label, status=ERROR, message="interrupted")
        elif p.gadget is None:
            r = CaseResult(p.case, p.gadget_label, status=ERROR if not p.case.skip else SKIPPED,
                           message=p.case.skip or p.prepare_error)
        else:
            r = run_case(p.case, p.gadget, cancel=cancel)
        with lock:
            results[i] = r
            if on_result is not None:
                on_result(r)

    groups: dict[str, list[tuple[int, Planned]]] = {}
    for i, p in enumerate(items):
        groups.setdefault(p.key if p.key is not None else p.gadget_label, []).append((i, p))
    if jobs <= 1 or len(groups) <= 1:
        for i, p in enumerate(items):
            one(i, p)
    else:
        def group(entries: list[tuple[int, Planned]]) -> None:
            for i, p in entries:
                one(i, p)

        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="gadget-test") as pool:
            futures = [pool.submit(group, g) for g in groups.values()]
            try:
                while not all(f.done() for f in futures):
                    time.sleep(0.1)
            except BaseException:
                cancel.set()
                raise
            for f in futures:
                f.result()
    return [results[i] for i in range(len(items))]


def require_root() -> None:
    if os.geteuid() != 0:
        raise GadgetError("gadget test loads eBPF programs into this kernel: run it as root "
                          "(sudo gadget test ...)")
