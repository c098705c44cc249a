#!/usr/bin/env python3
"""Benchmark `gadget build --btfgen` against a sequential `bpftool gen min_core_btf` loop.

Kernels: N real Debian bookworm kernels (the -cloud flavours of 6.1 and 6.12, half amd64,
half arm64), downloaded with apt-get download into ~/.cache/gadgetsmith/kernels/bench and
imported with `gadget btf import` once (btfhub's .btf.tar.xz layout); later runs reuse
the archive.

Runs, alternating so machine noise hits every side alike:
  A. loop:    for each kernel, as ig's build step does: `tar xJf` it into a temp folder,
              `bpftool gen min_core_btf` against the object of its arch, one at a time
  B. btfgen:  gadget build DIR --btfgen --btfhub-archive ARCHIVE, empty btfgen cache
  C. cached:  the same build again with the cache of B (an unchanged rebuild)
  D. plain:   gadget build DIR (no btfgen): what compiling and packaging cost anyway

and prints medians. The btfgen stage's own time is the build's reported "seconds"
(`--format json`); the whole-command figure is B - D. Targets (issue #20): stage/loop
<= 0.6 on 2 cores, cached/loop <= 0.05.

Usage: .venv/bin/python bench/btfgen.py [--kernels 16] [--runs 5] [GADGET_DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GADGET = str(Path(sys.executable).parent / "gadget")
CACHE = Path(os.environ.get("GADGETSMITH_KERNEL_CACHE") or Path.home() / ".cache" / "gadgetsmith" / "kernels")
# one list per arch, interleaving 6.1 and 6.12 so any N mixes both series
VERSIONS = ["6.1.0-50", "6.12.100+deb12", "6.1.0-52", "6.12.107+deb12", "6.1.0-54",
            "6.12.113+deb12", "6.1.0-56", "6.12.117+deb12", "6.1.0-48", "6.12.111+deb12",
            "6.1.0-51", "6.12.101+deb12", "6.1.0-53", "6.12.115+deb12", "6.1.0-55", "6.1.0-57"]


def apt_options(arch: str) -> list[str]:
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    if arch == native:
        return []
    state = CACHE / f"apt-{arch}"
    opts = ["-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
            "-o", f"APT::Architectures::={arch}", "-o", f"APT::Architecture={arch}"]
    if not any((state / "lists").glob("*_Packages*")):
        (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "-q", *opts, "update"], check=True, stdout=subprocess.DEVNULL)
    return opts


def archive_for(n: int) -> Path:
    """A btfhub-layout archive of n kernels (made once, then reused)."""
    if n % 2 or not 2 <= n <= 2 * len(VERSIONS):
        raise SystemExit(f"--kernels: an even number from 2 to {2 * len(VERSIONS)}")
    want = [(v, a) for a in ("amd64", "arm64") for v in VERSIONS[: n // 2]]
    out = CACHE / f"bench-archive-{n}"
    if (out / ".complete").exists():
        return out
    debs = CACHE / "bench"
    debs.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".bench-archive-{n}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for v, a in want:
        name = f"linux-image-{v}-cloud-{a}"
        have = [p for p in debs.iterdir() if p.name.startswith(name + "_")]
        if not have:
            print(f"apt-get download {name}:{a}", file=sys.stderr)
            subprocess.run(["apt-get", "-q", *apt_options(a), "download", f"{name}:{a}"], cwd=debs,
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = sorted(str(p) for p in debs.iterdir() if p.suffix == ".deb"
                   and any(p.name.startswith(f"linux-image-{v}-cloud-{a}_") for v, a in want))
    print(f"gadget btf import ({len(files)} packages)", file=sys.stderr)
    subprocess.run([GADGET, "btf", "import", *files, "--archive", str(tmp)], check=True,
                   stdout=subprocess.DEVNULL)
    (tmp / ".complete").write_text("")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    for f in files:  # the archive is what the benchmark needs; keep the disk
        os.unlink(f)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("gadget_dir", nargs="?", default=str(REPO / "sample-gadgets" / "trace_open"))
    ap.add_argument("--kernels", type=int, default=16)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    gdir = Path(args.gadget_dir).resolve()
    arch_dir = archive_for(args.kernels)

    from gadgetsmith.toolchain.btfgen.archive import scan_archive

    entries = scan_archive(arch_dir)
    print(f"{len(entries)} kernels: " + ", ".join(e.key for e in entries), file=sys.stderr)
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    with tempfile.TemporaryDirectory(prefix="bench-btfgen-") as tmp_s:
        tmp = Path(tmp_s)
        objdir = tmp / "obj"
        objdir.mkdir()
        subprocess.run([GADGET, "build", str(gdir), "--no-store", "--output-dir", str(objdir)], check=True,
                       stdout=subprocess.DEVNULL)
        env = dict(os.environ)

        def cpu() -> float:
            r = resource.getrusage(resource.RUSAGE_CHILDREN)
            return r.ru_utime + r.ru_stime

        def loop() -> float:
            work = tmp / "loop"
            c0 = cpu()
            t0 = time.perf_counter()
            for e in entries:
                work.mkdir()
                subprocess.run(["tar", "xJf", str(e.path), "-C", str(work)], check=True)
                src = next(work.glob("*.btf"))
                subprocess.run([bpftool, "gen", "min_core_btf", str(src), str(work / "min.btf"),
                                str(objdir / f"{e.arch}.bpf.o")], check=True, stdout=subprocess.DEVNULL)
                shutil.rmtree(work)
            wall = time.perf_counter() - t0
            res["loop_cpu"].append(cpu() - c0)
            return wall

        def build(cache: Path | None, btfgen: bool = True) -> tuple[float, float]:
            argv = [GADGET, "build", str(gdir), "--no-store", "--format", "json"]
            if btfgen:
                argv += ["--btfgen", "--btfhub-archive", str(arch_dir)]
            e = dict(env, GADGETSMITH_BTFGEN_CACHE=str(cache or tmp / "none"))
            c0 = cpu()
            t0 = time.perf_counter()
            out = subprocess.run(argv, check=True, env=e, capture_output=True, text=True).stdout
            wall = time.perf_counter() - t0
            cpu_used[0] = cpu() - c0
            stage = json.loads(out).get("btfgen", {}).get("seconds", 0.0) if btfgen else 0.0
            return wall, stage

        cpu_used = [0.0]
        res: dict[str, list[float]] = {k: [] for k in (
            "loop", "build", "stage", "cached", "cached_stage", "plain",
            "loop_cpu", "build_cpu", "plain_cpu")}
        build(tmp / "warm")  # page cache, PCH
        for i in range(args.runs):
            res["loop"].append(loop())
            cache = tmp / f"cache{i}"
            w, s = build(cache)
            res["build"].append(w)
            res["stage"].append(s)
            res["build_cpu"].append(cpu_used[0])
            w, s = build(cache)
            res["cached"].append(w)
            res["cached_stage"].append(s)
            res["plain"].append(build(None, btfgen=False)[0])
            res["plain_cpu"].append(cpu_used[0])
            print(f"run {i + 1}: " + "  ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in res.items()),
                  file=sys.stderr)
    med = {k: statistics.median(v) for k, v in res.items()}
    load = os.getloadavg()[0]
    print(f"\n{len(entries)} kernels, {args.runs} runs, {os.cpu_count()} cores, load {load:.1f}")
    print(f"sequential tar xJ + bpftool loop:     {med['loop'] * 1000:7.0f} ms")
    print(f"gadget build --btfgen (empty cache):  {med['build'] * 1000:7.0f} ms  (btfgen stage "
          f"{med['stage'] * 1000:.0f} ms)")
    print(f"gadget build --btfgen (cached):       {med['cached'] * 1000:7.0f} ms  (btfgen stage "
          f"{med['cached_stage'] * 1000:.0f} ms)")
    print(f"gadget build (no btfgen):             {med['plain'] * 1000:7.0f} ms")
    print(f"stage / loop:         {med['stage'] / med['loop']:.2f}  (target <= 0.6)")
    print(f"cached stage / loop:  {med['cached_stage'] / med['loop']:.3f}  (target <= 0.05)")
    btfgen_cpu = med["build_cpu"] - med["plain_cpu"]
    print(f"CPU (user+sys of all processes): loop {med['loop_cpu'] * 1000:.0f} ms, build --btfgen "
          f"minus plain build {btfgen_cpu * 1000:.0f} ms ({btfgen_cpu / med['loop_cpu']:.2f})")
    extra = med['build'] - med['plain']
    print(f"(build - plain) / loop: {extra / med['loop']:.2f};  "
          f"(cached - plain) / loop: {(med['cached'] - med['plain']) / med['loop']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
