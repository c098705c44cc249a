#!/usr/bin/env python3
"""Benchmark `gadget build` against the raw compiler commands it wraps, and its build cache.

Runs, alternating so machine noise hits every side alike (each round runs every command
once, in this order):
  A.  raw:        clang <same flags> -c program.bpf.c -o x.o && llvm-strip -g x.o
  A'. raw + PCH:  the same with -include-pch of the PCH gadget build uses
  B.  gadget:     gadget build DIR --arch amd64 --no-cache (PCH warm, store in a temp dir)
  C.  two-arch:   gadget build DIR --no-cache (amd64 + arm64, compiled in parallel)
  D.  no-PCH:     B with GADGETSMITH_NO_PCH=1 (the driver's own overhead over plain clang)
  F.  cached:     gadget build DIR --arch amd64, unchanged since the last build (the build
                  cache serves the object)
  G.  cold:       F with an empty $XDG_CACHE_HOME each time: the PCH, the generated
                  schema check and the object are all made afresh
  V.  validate:   gadget validate DIR (after F: the object from the cache; an install
                  without the cache compiles it)
  E.  builder:    with --builder, gadget build DIR --arch amd64 --builder (container start,
                  exec of the same clang argv, removal: the engine of DOCKER_HOST; the
                  builder uses neither the build cache nor the PCH, so D is the same work
                  on the host)

and prints medians and the ratios B/A (target <= 1.10), B/A', C/B (target <= 1.25),
F/G (target <= 0.2) and F/B, and with --builder E/D (the container's cost) and E/B.
`--gadget PATH` (repeatable) times B, C, D, F, G and V for other installs too, in the same
rounds (an install without --no-cache has no build cache: its B is its plain build). Like
bench/startup.py it byte-compiles each install first (pip does; an editable install under
PYTHONDONTWRITEBYTECODE would recompile every module in every process).

Usage: .venv/bin/python bench/build.py [GADGET_DIR] [--runs N] [--builder] [--gadget PATH ...]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GADGET = str(Path(sys.executable).parent / "gadget")


def timed(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _compile_tree(gadget: str) -> None:
    tree = Path(gadget).resolve().parent.parent.parent
    for folder in ("toolchain", "runtime", "schemas"):
        if (tree / folder).is_dir():
            compileall.compile_dir(str(tree / folder), quiet=1)


class Install:
    """One `gadget` executable's commands, run with its own store."""

    def __init__(self, gadget: str, gdir: Path, tmp: Path, index: int) -> None:
        self.gadget = gadget
        self.tmp = tmp / f"install{index}"
        self.env = dict(os.environ, GADGETSMITH_STORE=str(self.tmp / "store"))
        helptext = subprocess.run([gadget, "build", "--help"], capture_output=True, text=True,
                                  env=dict(os.environ, COLUMNS="200")).stdout
        self.has_cache = "--no-cache" in helptext
        nocache = ["--no-cache"] if self.has_cache else []
        self.one = [gadget, "build", str(gdir), "--arch", "amd64", "-t", "bench:one", *nocache]
        self.two = [gadget, "build", str(gdir), "-t", "bench:two", *nocache]
        self.cached = [gadget, "build", str(gdir), "--arch", "amd64", "-t", "bench:one"]
        self.validate = [gadget, "validate", str(gdir)]
        self.times: dict[str, list[float]] = {k: [] for k in "BCDFGV"}

    def cold(self) -> float:
        cache = self.tmp / "cold-cache"
        shutil.rmtree(cache, ignore_errors=True)
        return timed(self.cached, env=dict(self.env, XDG_CACHE_HOME=str(cache)))

    def round(self) -> None:
        t = self.times
        t["B"].append(timed(self.one, env=self.env))
        t["C"].append(timed(self.two, env=self.env))
        t["D"].append(timed(self.one, env=dict(self.env, GADGETSMITH_NO_PCH="1")))
        if self.has_cache:
            timed(self.cached, env=self.env)  # the object as the cache has it
            t["F"].append(timed(self.cached, env=self.env))
        t["V"].append(timed(self.validate, env=self.env))
        t["G"].append(self.cold())


def _report(name: str, inst: Install, a: float, a_pch: float) -> None:
    med = {k: statistics.median(v) for k, v in inst.times.items() if v}
    b = med["B"]
    print(f"-- {name}: {inst.gadget}")
    print(f"   build amd64 (B):       {b * 1000:8.1f} ms   B/A {b / a:6.3f} (target <= 1.10), "
          f"B/A' {b / a_pch:6.3f}")
    print(f"   build 2 arches (C):    {med['C'] * 1000:8.1f} ms   C/B {med['C'] / b:6.3f} (target <= 1.25)")
    print(f"   build no PCH (D):      {med['D'] * 1000:8.1f} ms   D/A {med['D'] / a:6.3f} (driver overhead)")
    print(f"   cold build (G):        {med['G'] * 1000:8.1f} ms")
    print(f"   validate DIR (V):      {med['V'] * 1000:8.1f} ms   V/B {med['V'] / b:6.3f}")
    if "F" in med:
        print(f"   unchanged rebuild (F): {med['F'] * 1000:8.1f} ms   F/G {med['F'] / med['G']:6.3f} "
              f"(target <= 0.2), F/B {med['F'] / b:6.3f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("gadget_dir", nargs="?", default=str(REPO / "sample-gadgets" / "trace_open"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--builder", action="store_true", help="also time --builder builds (E)")
    ap.add_argument("--gadget", action="append", default=None, help="a gadget executable to time")
    args = ap.parse_args()
    gdir = Path(args.gadget_dir).resolve()
    gadgets = args.gadget or [GADGET]
    for g in gadgets:
        _compile_tree(g)

    from gadgetsmith.toolchain.build.compile import clang_argv, find_toolchain, vmlinux_pch

    tc = find_toolchain()
    pch = vmlinux_pch(tc, "amd64")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        obj = str(tmp / "raw.o")
        raw_clang = clang_argv(tc, "program.bpf.c", "amd64", obj)
        raw_pch = clang_argv(tc, "program.bpf.c", "amd64", obj, pch=pch)
        installs = [Install(g, gdir, tmp, i) for i, g in enumerate(gadgets)]
        boxed = [*installs[0].cached, "--builder"]

        def raw(argv: list[str]) -> float:
            t0 = time.perf_counter()
            subprocess.run(argv, check=True, cwd=gdir)
            subprocess.run([tc.strip, "-g", obj], check=True)
            return time.perf_counter() - t0

        # warm-up (page cache, store creation, the PCH and schema caches)
        raw(raw_clang), raw(raw_pch)
        for inst in installs:
            inst.round()
            for v in inst.times.values():
                v.clear()
        if args.builder:
            timed(boxed, env=installs[0].env)
        ra, ra_pch, re = [], [], []
        for _ in range(args.runs):
            ra.append(raw(raw_clang))
            ra_pch.append(raw(raw_pch))
            for inst in installs:
                inst.round()
            if args.builder:
                re.append(timed(boxed, env=installs[0].env))
    a, a_pch = statistics.median(ra), statistics.median(ra_pch)
    print(f"gadget dir:            {gdir}")
    print(f"toolchain:             {tc.describe()}")
    print(f"runs:                  {args.runs} (alternating); load {os.getloadavg()}")
    print(f"raw clang+strip (A):   {a * 1000:8.1f} ms (median)")
    print(f"raw, same PCH (A'):    {a_pch * 1000:8.1f} ms (median)")
    for i, inst in enumerate(installs):
        _report(f"install {i}", inst, a, a_pch)
    if re:
        e = statistics.median(re)
        b, d = (statistics.median(installs[0].times[k]) for k in "BD")
        print(f"gadget build --builder:{e * 1000:8.1f} ms (median, amd64, container included)")
        print(f"ratio builder/host:    {e / d:6.3f}   (same compile work: no cache, no PCH)")
        print(f"ratio builder/build:   {e / b:6.3f}   (against a host build with the PCH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
