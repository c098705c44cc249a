#!/usr/bin/env python3
"""Benchmark the runtime's hot path (issues #4 and #5). Needs root, clang, cc, libbpf-dev.

  a. throughput of the consumers themselves (issue #19): bench/runtime (one event per
     getppid(2)) with a 128 MiB ring is filled by bench/runtime/gen.c with 800k records
     while nothing reads, then drained: by the JSON path (`gadget run -o json` into
     /dev/null: Gadget.run() and its Output; before fec240a, Gadget.event_pairs() and
     Printer.event per event) and by bench/runtime/consumer.c (libbpf's
     reader in C, each record's bytes summed; cc -lbpf), runs interleaved. Neither waits
     for the generator, so the rates are the consumers' own: events/s (target >= 0.3 of
     C) and CPU per event (target <= 1.5 us). (Until 2026-12-02, a. ran both next to the
     generator, which then limited C to 270-340k/s.)
  f. the ring reader alone: a filled ring read into the readers stage's queue, nothing
     decoded; CPU per record of the mapped reader (runtime/bpf/ringbuf.py) vs libbpf's
     ring_buffer__poll callback.
  b. loss: a steady 100k events/s for 10 s through the same JSON path; lost records.
  c. latency: `gadget run IMAGE` (cached image) start to first event on stdout.
  d. enrichment (issue #5): the generator runs in a podman container; events/s with
     container enrichment (+ in-kernel selection) vs without, same load. Target >= 0.8.
     Also shown: "merged per event" (Gadget.events(), the 11 fields added to every event
     dict before printing; what `gadget run` did before event_pairs()).
  e. WASM (issue #22): the same JSON path as a., with a pass-through WASM module
     (bench/runtime/passthrough.c: subscribed, does nothing) in the gadget's wasm stage
     vs without a module, same gadget, same load. Target >= 0.5.

Usage: sudo .venv/bin/python bench/runtime.py [--runs N] [--seconds S] [--skip-containers]
       [--only a|b|c|d|e|f] [--gadget PATH ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "bench" / "runtime"
GADGET = str(Path(sys.executable).parent / "gadget")
IMAGE = "bench_getppid:bench"


def sh(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw)


def prepare(work: Path) -> tuple[Path, Path, Path, Path]:
    """Compile the generator and the C consumer; build the gadget (object + cached image)."""
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.driver import build

    gen = work / "gsbench-gen"
    consumer = work / "consumer"
    sh("cc", "-O2", "-static", "-o", str(gen), str(SRC / "gen.c"))
    sh("cc", "-O2", "-o", str(consumer), str(SRC / "consumer.c"), "-lbpf")
    out = work / "obj"
    out.mkdir()
    obj = build(SRC, arches=[host_arch()], output_dir=out, no_store=True).objects[host_arch()]
    store = work / "store"
    sh(GADGET, "--store", str(store), "build", str(SRC), "-t", IMAGE, "--arch", host_arch())
    return gen, consumer, Path(obj), store


#: a. drains this many records (plus whatever other processes' getppid() calls add)
DRAIN = 800_000


def big_ring_object(work: Path) -> Path:
    """bench/runtime's gadget with a 128 MiB ring: DRAIN records fit with room to spare."""
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.driver import build

    src = work / "bigring"
    shutil.copytree(SRC, src)
    prog = src / "program.bpf.c"
    text = prog.read_text()
    assert "GADGET_TRACER_MAP(events, 1024 * 1024 * 4)" in text
    prog.write_text(text.replace("GADGET_TRACER_MAP(events, 1024 * 1024 * 4)",
                                 "GADGET_TRACER_MAP(events, 1 << 27)"))
    out = work / "bigring-obj"
    out.mkdir()
    return Path(build(src, arches=[host_arch()], output_dir=out, no_store=True).objects[host_arch()])


def gen_cmd(gen: Path, seconds: float, rate: int = 0) -> list[str]:
    return [str(gen), str(seconds), str(rate)]


def parse_gen(stdout: str) -> tuple[int, float]:
    n, secs = stdout.split()
    return int(n), float(secs)


# ------------------------------------------------------------------------------ consumers
def py_consumer(obj: Path, gen_argv: list[str], seconds: float, containers=None, selector=None,
                wrap: list[str] | None = None, pairs_path: bool = True,
                wasm: bytes | None = None) -> dict:
    """The same path as `gadget run -o json > /dev/null`: Gadget.event_pairs() + Printer.
    ``pairs_path=False``: Gadget.events() (enrichment merged into every event dict, the
    path before the JSON printer spliced pre-rendered enrichment). ``wasm``: a module in
    the gadget's wasm stage."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.events.output import Printer

    kw: dict = {"wasm": wasm}
    if containers is not None:
        kw |= {"containers": containers, "host": False, "selector": selector}
    with open(os.devnull, "w") as devnull, Gadget(obj.read_bytes(), **kw) as g:
        printer = Printer("json", g.datasources[0].decoder.columns, out=devnull,
                          autoflush=False)
        result: dict = {}

        def drive() -> None:
            result["gen"] = parse_gen(sh(*(wrap or []), *gen_argv).stdout)

        t = threading.Thread(target=drive)
        cpu0 = time.thread_time()  # this thread does all the reading, decoding, printing
        t0 = time.monotonic()
        t.start()
        received, last = 0, t0
        pairs = g.event_pairs if pairs_path else g.events
        for item in pairs(timeout=seconds + 5.0, on_idle=printer.flush):
            if pairs_path:
                printer.event(*item)
            else:
                printer.event(item)
            received += 1
            last = time.monotonic()
            if "gen" in result and received >= result["gen"][0] - g.lost_samples:
                break  # (a dict lookup: Thread.is_alive() per event costs 0.2 us)
        cpu = time.thread_time() - cpu0
        t.join()
        g.check_lost()
        emitted, elapsed = result["gen"]
        return {"emitted": emitted, "received": received, "lost": g.lost_samples,
                "rate": received / max(last - t0, elapsed), "per_cpu_s": received / max(cpu, 1e-6)}


def c_drain(consumer: Path, obj: Path, gen: Path) -> dict:
    """The C consumer drains a ring the generator filled while it waited."""
    proc = subprocess.Popen([str(consumer), str(obj), "drain"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin and proc.stdout
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the C consumer failed to load the gadget")
    emitted, _ = parse_gen(sh(*gen_cmd(gen, 1.0, DRAIN)).stdout)
    proc.stdin.write(f"{emitted}\n")
    proc.stdin.close()
    n, wall, cpu = proc.stdout.read().split()
    proc.wait()
    return {"received": int(n), "rate": int(n) / float(wall), "us_cpu": float(cpu) / int(n) * 1e6}


def py_drain(obj: Path, gen: Path) -> dict:
    """`gadget run -o json > /dev/null`'s path (Gadget.run and its Output consumer)
    drains a ring the generator filled first."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.pipeline.output import Output

    with open(os.devnull, "w") as devnull, Gadget(obj.read_bytes()) as g:
        output = Output("json", g.datasources, out=devnull)
        emitted, _ = parse_gen(sh(*gen_cmd(gen, 1.0, DRAIN)).stdout)
        received = [0]

        def on_batch(batch) -> None:
            output(batch)
            received[0] += len(batch)
            if received[0] >= emitted:
                g.stop()

        cpu0, t0 = time.thread_time(), time.monotonic()  # this thread reads, decodes, prints
        g.run(on_batch, timeout=60.0, on_idle=output.flush)
        wall, cpu = time.monotonic() - t0, time.thread_time() - cpu0
        g.check_lost()
        return {"received": received[0], "lost": g.lost_samples, "rate": received[0] / wall,
                "us_cpu": cpu / received[0] * 1e6}


# ------------------------------------------------------------------------------ scenarios
def medians(runs: list[dict]) -> tuple[float, float]:
    """Median wall-clock rate and median rate per CPU-second of a scenario's runs."""
    return (statistics.median(r["rate"] for r in runs),
            statistics.median(r["per_cpu_s"] for r in runs))


def throughput(gen: Path, consumer: Path, obj: Path, runs: int) -> dict:
    """Drain rates and CPU per event of both consumers, runs interleaved (CPU per event is
    the steadier figure on a shared machine)."""
    cs, ps = [], []
    for i in range(runs):
        cs.append(c_drain(consumer, obj, gen))
        ps.append(py_drain(obj, gen))
        print(f"  run {i + 1}: C {cs[-1]['rate']:,.0f}/s {cs[-1]['us_cpu']:.2f} us CPU/event  "
              f"python {ps[-1]['rate']:,.0f}/s {ps[-1]['us_cpu']:.2f} us CPU/event "
              f"(received {ps[-1]['received']:,}, lost {ps[-1]['lost']:,})", flush=True)
    c = statistics.median(r["rate"] for r in cs)
    p = statistics.median(r["rate"] for r in ps)
    c_us = statistics.median(r["us_cpu"] for r in cs)
    p_us = statistics.median(r["us_cpu"] for r in ps)
    return {"c": c, "py": p, "ratio": p / c, "c_us": c_us, "py_us": p_us}


def steady_loss(gen: Path, obj: Path, rate: int = 100_000, seconds: float = 10.0) -> dict:
    return py_consumer(obj, gen_cmd(gen, seconds, rate), seconds)


def first_event_latency(gen: Path, store: Path, runs: int, consumer: Path | None = None,
                        obj: Path | None = None, gadgets: list[str] | None = None,
                        ) -> tuple[list[float], float | None]:
    """`gadget run IMAGE --host -o json` start until its first event line is read (for
    each of ``gadgets``, default this checkout's), and the same for the C consumer loading
    the image's object (medians; runs interleaved)."""
    gadgets = gadgets or [GADGET]
    times: list[list[float]] = [[] for _ in gadgets]
    c_times = []
    env = dict(os.environ, GADGETSMITH_STORE=str(store))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's run has its .pyc files

    def load(stop: threading.Event) -> None:  # keep events coming: the first follows attach
        while not stop.is_set():
            subprocess.run(gen_cmd(gen, 0.01, 10_000), capture_output=True)

    for _ in range(runs):
        stop = threading.Event()
        t = threading.Thread(target=load, args=(stop,), daemon=True)
        t.start()
        for gadget, out in zip(gadgets, times, strict=True):
            t0 = time.perf_counter()
            proc = subprocess.Popen([gadget, "run", IMAGE, "--host", "-o", "json", "--count", "1"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdout
            proc.stdout.readline()
            out.append(time.perf_counter() - t0)
            proc.wait()
        if consumer is not None and obj is not None:
            t0 = time.perf_counter()
            c = subprocess.Popen([str(consumer), str(obj), "drain"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert c.stdin and c.stdout
            c.stdin.write("1\n")  # the first record is all it waits for
            c.stdin.close()
            c.stdout.readline()  # "ready"
            c.stdout.readline()  # the count line, once the first record was read
            c_times.append(time.perf_counter() - t0)
            c.wait()
        stop.set()
        t.join()
    return [statistics.median(t) for t in times], statistics.median(c_times) if c_times else None


def enrichment(gen: Path, obj: Path, runs: int, seconds: float) -> dict | None:
    """Generator inside a podman container; with vs without container enrichment."""
    from gadgetsmith.runtime.containers.collection import (
        ContainerCollection,
        ContainerSelector,
        PodmanSource,
    )

    sys.path.insert(0, str(REPO))
    from tests.podman_util import Podman

    work = Path(tempfile.mkdtemp(prefix="gsbench-pod-"))
    try:
        pod = Podman(work)
    except BaseException as e:  # noqa: BLE001 - pytest's skip is a BaseException
        print(f"  skipped: {e}")
        return None
    shutil.copy(gen, work / "gsbench-gen")
    name = f"gsbench-{os.getpid()}"
    try:
        pod.run("run", "-d", "--name", name, "-v", f"{work}:/bench:ro", "--network", "none",
                "localhost/gadgetsmith-busybox:test", "sleep", "1000")
        pod.names.append(name)
        wrap = [pod.podman, "exec", name]
        argv = ["/bench/gsbench-gen", str(seconds), "0"]
        with_e, without, merged = [], [], []
        for i in range(runs):
            without.append(py_consumer(obj, argv, seconds, wrap=wrap))
            for pairs_path, out in ((True, with_e), (False, merged)):
                coll = ContainerCollection([PodmanSource(env=pod.env)])
                coll.start()
                try:
                    out.append(py_consumer(obj, argv, seconds, containers=coll, wrap=wrap,
                                           selector=ContainerSelector(containername=name),
                                           pairs_path=pairs_path))
                finally:
                    coll.stop()
            print(f"  run {i + 1}: without {without[-1]['rate']:,.0f}/s  "
                  f"with {with_e[-1]['rate']:,.0f}/s  "
                  f"with, merged per event {merged[-1]['rate']:,.0f}/s; per CPU-second "
                  f"{without[-1]['per_cpu_s']:,.0f} / {with_e[-1]['per_cpu_s']:,.0f} / "
                  f"{merged[-1]['per_cpu_s']:,.0f}", flush=True)
        m, mc = medians(merged)
        a, ac = medians(with_e)
        b, bc = medians(without)
        return {"with": a, "without": b, "ratio": a / b, "merged": m, "ratio_merged": m / b,
                "ratio_cpu": ac / bc, "ratio_merged_cpu": mc / bc}
    finally:
        pod.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def wasm_passthrough(gen: Path, obj: Path, runs: int, seconds: float) -> dict:
    """Events/s through the JSON path with the pass-through module vs without, runs
    interleaved; also per CPU-second of the reading thread (steadier on a busy machine)."""
    from gadgetsmith.toolchain.build.wasm import build_c

    with tempfile.TemporaryDirectory(prefix="gsbench-wasm-") as tmp:
        module = build_c(SRC / "passthrough.c", Path(tmp) / "program.wasm").data
    without, with_m = [], []
    for i in range(runs):
        without.append(py_consumer(obj, gen_cmd(gen, seconds), seconds))
        with_m.append(py_consumer(obj, gen_cmd(gen, seconds), seconds, wasm=module))
        print(f"  run {i + 1}: without {without[-1]['rate']:,.0f}/s  with the module "
              f"{with_m[-1]['rate']:,.0f}/s; per CPU-second {without[-1]['per_cpu_s']:,.0f} / "
              f"{with_m[-1]['per_cpu_s']:,.0f}", flush=True)
    a, ac = medians(with_m)
    b, bc = medians(without)
    return {"with": a, "without": b, "ratio": a / b, "ratio_cpu": ac / bc, "with_cpu": ac,
            "without_cpu": bc}


def reader_alone(gen: Path, obj: Path, runs: int) -> dict:
    """CPU per record of the ring reader alone (records into the readers stage's queue,
    nothing decoded): the mapped reader vs libbpf's ring_buffer__poll, interleaved."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.pipeline.readers import ReadersStage

    out: dict[str, list[float]] = {"libbpf": [], "mapped": []}
    data = obj.read_bytes()
    for i in range(runs):
        for kind, cpus in out.items():
            with Gadget(data, stages=[ReadersStage(ring_reader=kind)]) as g:
                emitted, _ = parse_gen(sh(*gen_cmd(gen, 1.0, 300_000)).stdout)
                readers = g.pipeline["readers"]
                assert isinstance(readers, ReadersStage)
                queue = readers.queues[g.datasources[0].name]
                got, cpu0 = 0, time.thread_time()
                while got < emitted:
                    readers.poll(10)
                    got += len(queue)
                    queue.clear()
                cpus.append((time.thread_time() - cpu0) / got * 1e6)
        print(f"  run {i + 1}: libbpf {out['libbpf'][-1]:.2f} us  mapped {out['mapped'][-1]:.2f} us "
              "per record", flush=True)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--skip-containers", action="store_true")
    ap.add_argument("--only", choices=["a", "b", "c", "d", "e", "f"], action="append")
    ap.add_argument("--gadget", action="append", default=None,
                    help="c.: a `gadget` executable to time (repeatable, runs interleaved; "
                         "default this checkout's)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/runtime.py loads eBPF programs: run it as root")
    only = set(args.only or "abcdef")
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="gsbench-") as tmp:
        gen, consumer, obj, store = prepare(Path(tmp))
        if "a" in only:
            print(f"a. draining {DRAIN:,} waiting records (JSON to /dev/null vs C libbpf reader):")
            r = throughput(gen, consumer, big_ring_object(Path(tmp)), args.runs)
            print(f"   C {r['c']:,.0f}/s  python {r['py']:,.0f}/s  ratio {r['ratio']:.2f} "
                  "(target >= 0.3)")
            print(f"   CPU per event: C {r['c_us']:.2f} us  python {r['py_us']:.2f} us "
                  "(target <= 1.5 us)")
        if "b" in only:
            print("b. steady 100k events/s for 10 s:")
            r = steady_loss(gen, obj)
            print(f"   emitted {r['emitted']:,}  received {r['received']:,}  lost {r['lost']:,}")
        if "c" in only:
            print("c. `gadget run IMAGE --host` start to first event (stored image) vs the C "
                  "consumer's (same object):")
            pys, c = first_event_latency(gen, store, args.runs, consumer, obj, args.gadget)
            assert c is not None
            for name, py in zip(args.gadget or [GADGET], pys, strict=True):
                print(f"   {name}: {py * 1000:.0f} ms")
            print(f"   C {c * 1000:.0f} ms (medians; target <= 60 ms)")
        if "d" in only and not args.skip_containers:
            print("d. container enrichment cost (generator in a podman container):")
            r = enrichment(gen, obj, args.runs, args.seconds)
            if r:
                print(f"   without {r['without']:,.0f}/s  with {r['with']:,.0f}/s  "
                      f"ratio {r['ratio']:.2f} (target >= 0.8); merged per event "
                      f"{r['merged']:,.0f}/s ratio {r['ratio_merged']:.2f}")
                print(f"   per CPU-second of the reader: ratio {r['ratio_cpu']:.2f}, merged per "
                      f"event {r['ratio_merged_cpu']:.2f}")
        if "e" in only:
            print("e. a pass-through WASM module in the JSON path:")
            r = wasm_passthrough(gen, obj, args.runs, args.seconds)
            print(f"   without {r['without']:,.0f}/s  with {r['with']:,.0f}/s  ratio "
                  f"{r['ratio']:.2f} (target >= 0.5)")
            print(f"   per CPU-second of the reader: {r['without_cpu']:,.0f} / {r['with_cpu']:,.0f} "
                  f"ratio {r['ratio_cpu']:.2f}")
        if "f" in only:
            print("f. the ring reader alone (CPU per record, nothing decoded):")
            r = reader_alone(gen, big_ring_object(Path(tmp) / "f"), args.runs)
            print(f"   libbpf's callback {r['libbpf']:.2f} us  mapped pages {r['mapped']:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
