"""The runtime's stages alone (batches in, batches out, no kernel), their order and
lifecycle, and a gadget with several tracers run for real."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..conftest import SAMPLES, need_root, run_gadget

TWO_TRACERS = Path(__file__).parent.parent / "c" / "two_tracers"


# ------------------------------------------------------------------ lifecycle, no objects
def _recording_stages(log: list[str], fail_in: str = ""):
    from gadgetsmith.runtime.pipeline.stage import Stage

    class Recorder(Stage):
        def __init__(self, name: str, priority: int) -> None:
            self.name, self.priority = name, priority

        def pre_start(self, ctx) -> None:
            log.append(f"pre_start {self.name}")

        def start(self, ctx) -> None:
            log.append(f"start {self.name}")
            if self.name == fail_in:
                raise RuntimeError(f"{self.name} failed")

        def close(self) -> None:
            log.append(f"close {self.name}")

    return [Recorder("b", 20), Recorder("c", 30), Recorder("a", 10)]


def test_stages_run_by_priority_and_close_in_reverse() -> None:
    from gadgetsmith.runtime.pipeline.context import RunContext
    from gadgetsmith.runtime.pipeline.pipeline import Pipeline

    log: list[str] = []
    p = Pipeline(_recording_stages(log))
    assert [s.name for s in p.stages] == ["a", "b", "c"]
    p.start(RunContext())
    p.close()
    p.close()  # a second close does nothing
    assert log == ["pre_start a", "pre_start b", "pre_start c", "start a", "start b", "start c",
                   "close c", "close b", "close a"]


def test_a_failed_start_closes_every_stage_that_was_prepared() -> None:
    from gadgetsmith.runtime.pipeline.context import RunContext
    from gadgetsmith.runtime.pipeline.pipeline import Pipeline

    log: list[str] = []
    p = Pipeline(_recording_stages(log, fail_in="b"))
    with pytest.raises(RuntimeError, match="b failed"):
        p.start(RunContext())
    assert log[-3:] == ["close c", "close b", "close a"]
    assert "start c" not in log


def test_sort_stage_orders_snapshots_and_leaves_streams_alone() -> None:
    from gadgetsmith.runtime.pipeline.context import DataSource
    from gadgetsmith.runtime.pipeline.sort import SortStage
    from gadgetsmith.runtime.pipeline.stage import Batch

    rows = [{"comm": "b", "pid": 2}, {"comm": "a", "pid": 3}, {"comm": "b", "pid": 1}, {"pid": 9}]
    stage = SortStage("comm,-pid")
    assert stage.needs().fields == {"comm", "pid"} and not stage.needs().enrichment
    [snap] = stage.process(Batch(DataSource("snap", "iterator"), list(rows)))
    assert [(e.get("comm"), e["pid"]) for e in snap.events] == [
        ("a", 3), ("b", 2), ("b", 1), (None, 9)]
    [stream] = stage.process(Batch(DataSource("t", "tracer"), list(rows)))
    assert stream.events == rows
    assert SortStage("-runtime.containerName").needs().enrichment


# ------------------------------------------------------------------ event stages, real object
@pytest.fixture(scope="module")
def open_object(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.driver import build

    from ..conftest import skip_or_fail

    try:
        out = tmp_path_factory.mktemp("open")
        res = build(SAMPLES / "trace_open", arches=[host_arch()], output_dir=out, no_store=True)
    except Exception as e:  # noqa: BLE001 - no clang: the toolchain says why
        skip_or_fail(str(e))
    return res.objects[host_arch()].read_bytes()


def _record(ds, **values) -> bytes:
    """A raw record of ``ds`` with the given fields (dotted names; ints and strings)."""
    assert ds.decoder is not None
    raw = bytearray(ds.decoder.size)
    by_name = {f.name: f for f in ds.decoder.fields}
    for name, value in values.items():
        f = by_name[name]
        if isinstance(value, str):
            raw[f.offset:f.offset + f.size] = value.encode().ljust(f.size, b"\0")[:f.size]
        else:
            code = {1: "B", 2: "H", 4: "I", 8: "Q"}[f.size]
            struct.pack_into("<" + code, raw, f.offset, value)
    return bytes(raw)


def _event_pipeline(data: bytes, *extra, filter: str | None = None, processors=None):
    """The stages that need no kernel, started: source .. object, decode .. sort."""
    from gadgetsmith.runtime.containers.collection import ContainerCollection
    from gadgetsmith.runtime.pipeline.containers import ContainersStage
    from gadgetsmith.runtime.pipeline.context import RunContext
    from gadgetsmith.runtime.pipeline.decode import DecodeStage
    from gadgetsmith.runtime.pipeline.enrich import EnrichStage
    from gadgetsmith.runtime.pipeline.filter import FilterStage
    from gadgetsmith.runtime.pipeline.model import ObjectStage
    from gadgetsmith.runtime.pipeline.pipeline import Pipeline
    from gadgetsmith.runtime.pipeline.processors import ProcessorStage
    from gadgetsmith.runtime.pipeline.sort import SortStage
    from gadgetsmith.runtime.pipeline.source import ObjectBytes, SourceStage

    coll = ContainerCollection([])  # no runtime: every event gets the empty enrichment
    ctx = RunContext()
    p = Pipeline([SourceStage(ObjectBytes(data)), ContainersStage(coll), ObjectStage(),
                  DecodeStage(), EnrichStage(), ProcessorStage(processors), FilterStage(filter),
                  SortStage(), *extra])
    p.start(ctx)
    coll.stop()  # started by the containers stage; nothing to follow
    return p, ctx


def test_filter_stage_keeps_matching_events_with_their_enrichment(open_object: bytes) -> None:
    p, ctx = _event_pipeline(open_object, filter="proc.pid>5,fname~^/etc/")
    ds = ctx.datasources["open"]
    p.plan(False)  # the consumer splices the container fields (gadget run -o json)
    records = [_record(ds, **{"proc.pid": pid, "proc.mntns_id": 4026531841,
                              "fname": "/etc/passwd" if pid % 2 else "/tmp/x"})
               for pid in range(1, 11)]
    [batch] = p.feed(ds, records)
    assert [e["proc.pid"] for e in batch.events] == [7, 9]
    assert batch.extras is not None and len(batch.extras) == 2
    assert "runtime.containerName" not in batch.events[0]  # not merged: nothing reads it
    assert [ev for ev, _x in batch.pairs()] == batch.events
    assert ctx.raw_records == 10


def test_enrichment_is_merged_only_when_a_later_stage_or_the_consumer_reads_it(
        open_object: bytes) -> None:
    p, ctx = _event_pipeline(open_object, filter="runtime.containerName==")
    ds = ctx.datasources["open"]
    assert ds.columns[0].name == "runtime.containerName"  # the enrich stage's column
    p.plan(False)
    [batch] = p.feed(ds, [_record(ds, **{"proc.pid": 1, "proc.mntns_id": 1})])
    assert batch.extras is None and batch.events[0]["runtime.containerName"] == ""

    p, ctx = _event_pipeline(open_object)
    ds = ctx.datasources["open"]
    p.plan(True)  # Gadget.events(): complete events
    [batch] = p.feed(ds, [_record(ds, **{"proc.pid": 1, "proc.mntns_id": 1})])
    assert batch.extras is None and batch.events[0]["k8s.podName"] == ""
    p.plan(False)
    [batch] = p.feed(ds, [_record(ds, **{"proc.pid": 1, "proc.mntns_id": 1})])
    assert batch.extras is not None and "k8s.podName" not in batch.events[0]


def test_processors_see_complete_events_and_may_drop_them(open_object: bytes) -> None:
    seen: list[str] = []

    def keep_odd(ev):
        seen.append(ev["runtime.containerName"])
        return ev if ev["proc.pid"] % 2 else None

    p, ctx = _event_pipeline(open_object, processors=[keep_odd])
    ds = ctx.datasources["open"]
    p.plan(False)
    [batch] = p.feed(ds, [_record(ds, **{"proc.pid": n}) for n in range(4)])
    assert [e["proc.pid"] for e in batch.events] == [1, 3] and seen == [""] * 4


def test_a_stage_in_the_wasm_slot_changes_fields_and_emits_another_data_source(
        open_object: bytes) -> None:
    """What a WASM module will do: add a field to every event, and emit events of a data
    source of its own, which the output prints like any other."""
    from gadgetsmith.runtime.events.decode import Column
    from gadgetsmith.runtime.pipeline.context import DataSource
    from gadgetsmith.runtime.pipeline.output import Output
    from gadgetsmith.runtime.pipeline.stage import WASM, Batch, EventStage, Needs

    class Counter(EventStage):
        name, priority = "counter", WASM

        def needs(self) -> Needs:
            return Needs.reading({"proc.pid"}, changes=True)

        def pre_start(self, ctx) -> None:
            self.totals = DataSource("totals", "tracer", columns=[Column("events")])
            ctx.add_datasource(self.totals)
            ctx.datasources["open"].columns.append(Column("pid2"))

        def process(self, batch: Batch) -> list[Batch]:
            for ev in batch.events:
                ev["pid2"] = ev["proc.pid"] * 2
            return [batch, Batch(self.totals, [{"events": len(batch)}])]

    p, ctx = _event_pipeline(open_object, Counter())
    ds = ctx.datasources["open"]
    p.plan(False)
    out = p.feed(ds, [_record(ds, **{"proc.pid": n, "proc.comm": "cat"}) for n in (3, 4)])
    assert [b.datasource.name for b in out] == ["open", "totals"]
    assert [e["pid2"] for e in out[0].events] == [6, 8]

    text = io.StringIO()
    printer = Output("json", list(ctx.datasources.values()), out=text)
    for b in out:
        printer(b)
    lines = [json.loads(line) for line in text.getvalue().splitlines()]
    assert [x.get("pid2") for x in lines] == [6, 8, None] and lines[2] == {"events": 2}
    assert lines[0]["runtime"]["containerName"] == "" and lines[0]["proc"]["comm"] == "cat"

    text = io.StringIO()
    printer = Output("columns", list(ctx.datasources.values()), "open:comm,pid2;totals:events",
                     out=text)
    printer.start()
    for b in out:
        printer(b)
    assert text.getvalue().splitlines() == [
        "open:   COMM   PID2", "totals: EVENTS",
        "open:   cat    6", "open:   cat    8", "totals: 2"]


def test_output_fields_per_data_source(open_object: bytes) -> None:
    from gadgetsmith.runtime.pipeline.context import DataSource
    from gadgetsmith.runtime.pipeline.output import Output

    p, ctx = _event_pipeline(open_object)
    ds = ctx.datasources["open"]
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        Output("columns", [ds], "nope")
    with pytest.raises(ValueError, match="no data source 'other'"):
        Output("columns", [ds], "other:pid")
    warned: list[str] = []
    other = DataSource("other", "tracer", columns=ds.columns[:3])
    out = Output("columns", [ds, other], "fname", on_warning=warned.append)
    assert list(out.printers) == ["open"]
    assert warned and "data source other is not printed" in warned[0]


# ------------------------------------------------------------------ several tracers, for real
@pytest.fixture(scope="module")
def two_tracers(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.driver import build

    from ..conftest import skip_or_fail

    need_root()
    try:
        out = tmp_path_factory.mktemp("two")
        res = build(TWO_TRACERS, arches=[host_arch()], output_dir=out, no_store=True)
    except Exception as e:  # noqa: BLE001 - no clang: the toolchain says why
        skip_or_fail(str(e))
    return res.objects[host_arch()].read_bytes()


def _calls(n: int) -> None:
    for _ in range(n):
        os.getpid()
        os.getppid()


def test_every_tracer_is_read(two_tracers: bytes) -> None:
    from gadgetsmith.runtime import Gadget

    with Gadget(two_tracers, params={"targ_tid": threading.get_native_id()}) as g:
        assert [ds.name for ds in g.datasources] == ["pids", "ppids"]
        _calls(50)
        batches = []
        g.run(on_batch=batches.append, count=100, timeout=10)
    seqs: dict[str, list[int]] = {}
    for b in batches:
        seqs.setdefault(b.datasource.name, []).extend(e["seq"] for e in b.events)
    assert seqs == {"pids": list(range(50)), "ppids": list(range(50))}
    pids = [e for b in batches if b.datasource.name == "pids" for e in b.events]
    ppids = [e for b in batches if b.datasource.name == "ppids" for e in b.events]
    assert {e["pid"] for e in pids} == {os.getpid()} and "ppid" not in pids[0]
    assert {e["ppid"] for e in ppids} == {os.getppid()} and ppids[-1]["calls"] == 50


def test_reads_continue_where_the_last_one_stopped(two_tracers: bytes) -> None:
    """A count, or a caller leaving the loop, keeps the rest for the next read; a read
    of one data source keeps the other's events."""
    from gadgetsmith.runtime import Gadget

    with Gadget(two_tracers, params={"targ_tid": threading.get_native_id()}) as g:
        _calls(10)
        first = [e["seq"] for e in g.events(datasource="pids", count=3, timeout=5)]
        for ev in g.events(datasource="pids", timeout=5):
            second = ev["seq"]
            break
        rest = [e["seq"] for e in g.events(datasource="pids", timeout=0.5)]
        ppids = [e["seq"] for e in g.events(datasource="ppids", timeout=0.5)]
    assert first == [0, 1, 2] and second == 3 and rest == list(range(4, 10))
    assert ppids == list(range(10))


def test_cli_prints_every_data_source(two_tracers: bytes) -> None:
    child = subprocess.Popen([sys.executable, "-c", (
        "import os, time\n"
        "for _ in range(600):\n"
        "    os.getpid(); os.getppid(); time.sleep(0.05)\n")])
    try:
        time.sleep(0.2)
        args = ["run", str(TWO_TRACERS), "--host", "-p", f"tid={child.pid}", "--timeout", "60"]
        js = run_gadget(*args, "--count", "6", "-o", "json")
        cols = run_gadget(*args, "--count", "4")
    finally:
        child.kill()
        child.wait()
    rows = [json.loads(line) for line in js.stdout.splitlines()]
    assert len(rows) == 6 and "datasource" not in rows[0]
    assert {r["pid"] for r in rows if "pid" in r} == {child.pid}
    assert {r["ppid"] for r in rows if "ppid" in r} == {os.getpid()}
    lines = cols.stdout.splitlines()
    assert lines[0].split() == ["pids:", "PID", "SEQ"]
    assert lines[1].split() == ["ppids:", "PPID", "SEQ", "CALLS"]
    assert len(lines) == 6 and all(line.split()[0] in ("pids:", "ppids:") for line in lines[2:])
    assert {line.split()[1] for line in lines[2:] if line.startswith("pids:")} == {str(child.pid)}
