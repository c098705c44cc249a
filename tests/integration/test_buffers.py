"""Tracer buffers on this kernel: ring buffers, perf buffers, lost-sample accounting."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import pytest

from ..conftest import gadget_popen, wait_attached

pytestmark = pytest.mark.usefixtures("clang_available")

# One record per getpid() of the thread `targ_tid` (other threads of the test process,
# e.g. pytest-xdist's, must not add records), numbered in order.
_COMMON = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
    gadget_timestamp timestamp_raw;
    __u32 pid;
    __u32 seq;
    __u8 pad[112];
};

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

static __u32 seq;
"""

PERF_PROGRAM = _COMMON + """
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} events SEC(".maps");

GADGET_TRACER(perfpid, events, event);

SEC("tracepoint/syscalls/sys_enter_getpid")
int perf_getpid(void *ctx)
{
    struct event e = {};
    __u32 pid = bpf_get_current_pid_tgid() >> 32;

    if (targ_tid && (__u32)bpf_get_current_pid_tgid() != targ_tid)
        return 0;
    e.timestamp_raw = bpf_ktime_get_boot_ns();
    e.pid = pid;
    e.seq = seq++;
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# The smallest ring buffer (one page): a burst without reading overflows it, and the SDK's
# gadget_reserve_buf() counts each failed reservation in events_lost_samples.
RING_PROGRAM = _COMMON + """
GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(ringpid, events, event);

SEC("tracepoint/syscalls/sys_enter_getpid")
int ring_getpid(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct event *e;

    if (targ_tid && (__u32)bpf_get_current_pid_tgid() != targ_tid)
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->timestamp_raw = bpf_ktime_get_boot_ns();
    e->pid = pid;
    e->seq = seq++;
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


pytestmark = pytest.mark.usefixtures("root")


def build_object(tmp: Path, name: str, program: str) -> bytes:
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.driver import build

    d = tmp / name
    d.mkdir()
    (d / "program.bpf.c").write_text(program)
    (d / "gadget.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        description: buffer test gadget
        """))
    (tmp / f"{name}-out").mkdir()
    res = build(d, arches=[host_arch()], output_dir=tmp / f"{name}-out", no_store=True)
    return res.objects[host_arch()].read_bytes()


@pytest.fixture(scope="module")
def perf_obj(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_object(tmp_path_factory.mktemp("perf"), "perfpid", PERF_PROGRAM)


@pytest.fixture(scope="module")
def ring_obj(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_object(tmp_path_factory.mktemp("ring"), "ringpid", RING_PROGRAM)


def _burst(n: int) -> None:
    for _ in range(n):
        os.getpid()  # not cached by glibc >= 2.25: one syscall each


def test_perf_buffer_delivers_records_in_order(perf_obj: bytes) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.bpf import libbpf as L

    with Gadget(perf_obj, params={"targ_tid": threading.get_native_id()}) as g:
        m = g.loaded.maps["events"]
        assert L.map_type(m) == L.MAP_TYPE_PERF_EVENT_ARRAY
        _burst(50)
        evs = list(g.events(timeout=10, count=50))
    assert len(evs) == 50
    assert all(e["pid"] == os.getpid() for e in evs)
    # one thread: every record comes from the same CPU buffer or is reordered across CPUs,
    # but none is missing or duplicated
    assert sorted(e["seq"] for e in evs) == list(range(50))
    assert g.lost_samples == 0


def test_perf_buffer_overflow_is_reported_by_the_lost_callback(perf_obj: bytes) -> None:

    reported: list[tuple[int, str]] = []
    # one page per CPU holds ~25 records of 136 bytes: 5000 without reading must overflow.
    # Pinned to one CPU: losses are reported per CPU buffer, with that buffer's next record.
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        got, lost = _overflow_perf(perf_obj, reported)
    finally:
        os.sched_setaffinity(0, affinity)
    assert lost > 0 and got
    assert len({e["seq"] for e in got}) == len(got)
    # every record emitted was either received or counted as lost
    assert len(got) + lost == 5020
    assert sum(n for n, _ in reported) == lost and {ds for _, ds in reported} == {"perfpid"}


def _overflow_perf(perf_obj: bytes, reported: list[tuple[int, str]]):
    from gadgetsmith.runtime import Gadget

    with Gadget(perf_obj, params={"targ_tid": threading.get_native_id()}, perf_buffer_pages=1,
                on_lost=lambda n, ds: reported.append((n, ds))) as g:
        _burst(5000)
        got = list(g.events(timeout=1))
        # the kernel reports a full buffer's losses with the next record it can write there
        _burst(20)
        got += list(g.events(timeout=1))
        return got, g.lost_samples


def test_ring_buffer_overflow_counted_by_lost_samples_map(ring_obj: bytes) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.bpf import libbpf as L

    reported: list[int] = []
    with Gadget(ring_obj, params={"targ_tid": threading.get_native_id()},
                on_lost=lambda n, ds: reported.append(n)) as g:
        assert L.map_type(g.loaded.maps["events"]) == L.MAP_TYPE_RINGBUF
        _burst(3000)
        got = list(g.events(timeout=2))
        lost = g.lost_samples
    assert got and lost > 0
    assert len(got) + lost == 3000
    assert sum(reported) == lost


def test_cli_warns_about_lost_samples(ring_obj: bytes, tmp_path: Path) -> None:
    import subprocess
    import sys

    obj = tmp_path / "ring.o"
    obj.write_bytes(ring_obj)
    # once the gadget has attached, a child process bursts getpid() while `gadget run`
    # writes into a pipe nobody reads yet: the ring buffer overflows
    script = tmp_path / "burst.py"
    script.write_text("import os, sys\nsys.stdin.readline()\nfor _ in range(20000): os.getpid()\n")
    child = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, text=True)
    proc = gadget_popen("run", str(obj), "--host", "-p", f"targ_tid={child.pid}", "--timeout",
                        "6", "-o", "json")
    try:
        wait_attached(proc)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
        child.wait(timeout=120)
        _, err = proc.communicate(timeout=120)
    finally:
        child.kill()
        proc.kill()
    assert "lost" in err and "ringpid" in err, err
    assert "Traceback" not in err


def test_a_slow_reader_takes_bounded_batches(tmp_path: Path) -> None:
    """A reader behind the producer takes at most one batch per poll: the rest waits in
    the ring buffer (memory stays bounded; a full ring shows up as lost samples)."""
    from gadgetsmith.runtime import Gadget

    obj = build_object(tmp_path, "bigring", RING_PROGRAM.replace("GADGET_TRACER_MAP(events, 4096)",
                                                           "GADGET_TRACER_MAP(events, 1 << 22)"))
    with Gadget(obj, params={"targ_tid": threading.get_native_id()}) as g:
        _burst(10000)
        readers = g.pipeline["readers"]
        assert readers.readers["ringpid"].poll(1000) == 4096
        assert len(readers.queues["ringpid"]) == 4096
        got = list(g.events(timeout=2))
    assert len(got) == 10000 and g.lost_samples == 0
    assert [e["seq"] for e in got] == list(range(10000))


# Records of every length from 16 to 107 bytes (not multiples of 8: the ring pads them),
# every 7th one reserved and discarded, in the smallest ring: positions wrap around its
# end every few dozen records.
MIXED_PROGRAM = _COMMON + """
GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(mixed, events, event);

SEC("tracepoint/syscalls/sys_enter_getpid")
int mixed_getpid(void *ctx)
{
    struct event e = {};
    struct event *d;
    __u32 s, size;

    if (targ_tid && (__u32)bpf_get_current_pid_tgid() != targ_tid)
        return 0;
    s = seq++;
    if (s % 7 == 3) {
        d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
        if (d)
            bpf_ringbuf_discard(d, 0);
        return 0;
    }
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.seq = s;
    for (int i = 0; i < 112; i++)
        e.pad[i] = (__u8)(s + i);
    size = 16 + s % 92;
    asm volatile("" : "+r"(size));  /* keep the mask: the bound the verifier sees */
    size &= 127;
    bpf_ringbuf_output(&events, &e, size, 0);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _mixed_records(obj: bytes, reader: str, chunks: int) -> list[bytes]:
    """The raw records of ``chunks`` bursts of 10 getpid() calls, read after each burst."""
    import time

    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.pipeline.readers import ReadersStage

    out: list[bytes] = []
    with Gadget(obj, params={"targ_tid": threading.get_native_id()},
                stages=[ReadersStage(ring_reader=reader)]) as g:
        readers = g.pipeline["readers"]
        assert type(readers.readers["mixed"]).__name__ == (
            "MappedRing" if reader == "mapped" else "RingBuffer")
        for c in range(chunks):
            _burst(10)
            want = sum(1 for s in range(10 * (c + 1)) if s % 7 != 3)
            deadline = time.monotonic() + 5
            while len(out) < want and time.monotonic() < deadline:
                readers.poll(50)
                out += readers.take("mixed", 1000)
        assert g.lost_samples == 0
    return out


def test_mapped_ring_reads_what_libbpf_reads(tmp_path: Path) -> None:
    """The ring read from its mapped pages gives the records libbpf's ring_buffer__poll
    gives, byte for byte: every length, padding, discarded records skipped, positions
    wrapping around the ring's end many times."""
    from gadgetsmith.runtime.bpf.ringbuf import mapped_reading_supported

    if not mapped_reading_supported():
        pytest.skip("the mapped reader is used on x86-64 only")
    obj = build_object(tmp_path, "mixed", MIXED_PROGRAM)
    mapped = _mixed_records(obj, "mapped", 150)
    expected = [s for s in range(1500) if s % 7 != 3]
    assert [int.from_bytes(r[12:16], "little") for r in mapped] == expected
    assert [len(r) for r in mapped] == [16 + s % 92 for s in expected]
    assert mapped == _mixed_records(obj, "libbpf", 150)
    assert sum(len(r) + 8 for r in mapped) > 15 * 4096  # wrapped around many times


def test_mapped_ring_events_are_those_of_libbpfs_reader(ring_obj: bytes) -> None:
    """Decoded and printed, in every output mode, the events are the same."""
    import io

    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.events.output import MODES, Printer
    from gadgetsmith.runtime.pipeline.readers import ReadersStage

    printed = {}
    for reader in ("mapped", "libbpf"):
        with Gadget(ring_obj, params={"targ_tid": threading.get_native_id()},
                    stages=[ReadersStage(ring_reader=reader)]) as g:
            _burst(20)
            events = list(g.events(timeout=1))
            cols = g.datasources[0].decoder.columns
        for ev in events:
            ev.pop("timestamp_raw")
            ev.pop("timestamp")
        for mode in MODES:
            out = io.StringIO()
            Printer(mode, cols, out=out).events(events)
            printed[reader, mode] = out.getvalue()
    for mode in MODES:
        assert printed["mapped", mode] == printed["libbpf", mode], mode
    assert len(printed["mapped", "json"].splitlines()) == 20
