#!/usr/bin/env python3
"""Benchmark `gadget build` against the raw compiler commands it wraps.

Runs, alternating so machine noise hits both sides alike:
  A. raw:      clang <same flags> -c program.bpf.c -o x.o && llvm-strip -g x.o
  B. gadget:   gadget build DIR --arch amd64 (store in a temp dir)
  C. two-arch: gadget build DIR (amd64 + arm64, compiled in parallel)
  D. no-PCH:   gadget build DIR --arch amd64 with GADGETSMITH_NO_PCH=1 (no cached
               precompiled vmlinux.h: the driver's own overhead over plain clang)
  E. builder:  with --builder, gadget build DIR --arch amd64 --builder (container start,
               exec of the same clang argv, removal: the engine of DOCKER_HOST)
  F. host, same work as E: gadget build DIR --arch amd64 --no-cache with
               GADGETSMITH_NO_PCH=1 (the builder uses neither the build cache nor the PCH)

and prints median times and the ratios B/A (target <= 1.10) and C/B (target <= 1.25),
and with --builder E/F (the container's cost) and E/B (against a default host build).

Usage: .venv/bin/python bench/build.py [GADGET_DIR] [--runs N] [--builder]
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("gadget_dir", nargs="?", default=str(REPO / "sample-gadgets" / "trace_open"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--builder", action="store_true", help="also time --builder builds (E)")
    args = ap.parse_args()
    gdir = Path(args.gadget_dir).resolve()

    from gadgetsmith.toolchain.build.compile import clang_argv, find_toolchain

    tc = find_toolchain()
    import os

    with tempfile.TemporaryDirectory() as tmp:
        obj = str(Path(tmp) / "raw.o")
        raw_clang = clang_argv(tc, "program.bpf.c", "amd64", obj)
        env = dict(os.environ, GADGETSMITH_STORE=str(Path(tmp) / "store"))
        env_nopch = dict(env, GADGETSMITH_NO_PCH="1")
        one = [GADGET, "build", str(gdir), "--arch", "amd64", "-t", "bench:one"]
        two = [GADGET, "build", str(gdir), "-t", "bench:two"]
        boxed = [*one, "--builder"]
        cold = [*one, "--no-cache"]

        def raw() -> float:
            t0 = time.perf_counter()
            subprocess.run(raw_clang, check=True, cwd=gdir)
            subprocess.run([tc.strip, "-g", obj], check=True)
            return time.perf_counter() - t0

        # warm-up (page cache, store creation, the PCH cache)
        raw(), timed(one, env=env), timed(two, env=env), timed(one, env=env_nopch)
        if args.builder:
            timed(boxed, env=env)
        ra, rb, rc, rd, re, rf = [], [], [], [], [], []
        for _ in range(args.runs):
            ra.append(raw())
            rb.append(timed(one, env=env))
            rc.append(timed(two, env=env))
            rd.append(timed(one, env=env_nopch))
            if args.builder:
                re.append(timed(boxed, env=env))
                rf.append(timed(cold, env=env_nopch))
    a, b, c, d = (statistics.median(x) for x in (ra, rb, rc, rd))
    print(f"gadget dir:            {gdir}")
    print(f"toolchain:             {tc.describe()}")
    print(f"runs:                  {args.runs} (alternating)")
    print(f"raw clang+strip:       {a * 1000:8.1f} ms (median)")
    print(f"gadget build amd64:    {b * 1000:8.1f} ms (median)")
    print(f"gadget build 2 arches: {c * 1000:8.1f} ms (median)")
    print(f"gadget build no PCH:   {d * 1000:8.1f} ms (median, GADGETSMITH_NO_PCH=1)")
    print(f"ratio build/raw:       {b / a:6.3f}   (target <= 1.10)")
    print(f"ratio no-PCH/raw:      {d / a:6.3f}   (pure driver overhead)")
    print(f"ratio two-arch/one:    {c / b:6.3f}   (target <= 1.25)")
    if re:
        e, f = statistics.median(re), statistics.median(rf)
        print(f"gadget build --builder:{e * 1000:8.1f} ms (median, amd64, container included)")
        print(f"host, no cache/PCH:    {f * 1000:8.1f} ms (median, the builder's work on the host)")
        print(f"ratio builder/host:    {e / f:6.3f}   (same compile work)")
        print(f"ratio builder/build:   {e / b:6.3f}   (against the default host build)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
