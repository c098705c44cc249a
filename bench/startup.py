#!/usr/bin/env python3
"""Command-line start-up of `gadget`: one or more installs compared, interleaved.

Starts a docker-registry on 127.0.0.1, builds and pushes the trace_open sample once, then
runs, in turn for every given `gadget` executable (default: this checkout's), N times:

  gadget list                       (no registry code)
  gadget push IMG HOST/b/x:v1       (unchanged re-push: one HEAD request)
  gadget pull HOST/b/x:v1           (already in the store: manifests only)

and prints min and median wall time, and the process's CPU time, per command and
install (the CPU time is the steadier figure on a shared machine). To compare with another
commit: `git worktree add /tmp/old COMMIT && make -C /tmp/old setup`, then
`.venv/bin/python bench/startup.py --gadget /tmp/old/.venv/bin/gadget --gadget .venv/bin/gadget`.

Usage: .venv/bin/python bench/startup.py [--runs N] [--gadget PATH ...]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--gadget", action="append", default=None)
    ap.add_argument("--instructions", action="store_true",
                    help="also count each command's instructions once under valgrind (callgrind, "
                         "PYTHONHASHSEED=0): the same on a loaded machine as on a quiet one")
    args = ap.parse_args()
    gadgets = args.gadget or [str(Path(sys.executable).parent / "gadget")]
    for g in gadgets:  # each install's own tree, byte-compiled like a pip install
        tree = Path(g).resolve().parent.parent.parent
        for folder in ("toolchain", "runtime"):
            if (tree / folder).is_dir():
                compileall.compile_dir(str(tree / folder), quiet=1)

    from tests.registry_util import RegistryServer

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = dict(os.environ, GADGETSMITH_STORE=str(work / "store"))
    reg = RegistryServer(work / "reg").start()
    try:
        host = reg.host
        ref = f"{host}/b/x:v1"
        ins = ["--insecure-registries", host]
        subprocess.run([gadgets[0], "build", str(REPO / "sample-gadgets" / "trace_open"), "-t", "s:v1"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run([gadgets[0], "push", "s:v1", ref, *ins], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        cases = {"gadget list": ["list"], "gadget push (unchanged)": ["push", "s:v1", ref, *ins],
                 "gadget pull (already stored)": ["pull", ref, *ins]}
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for i in range(args.runs):
            for label, argv in cases.items():
                for g in (gadgets if i % 2 == 0 else gadgets[::-1]):
                    wall, used = _timed([g, *argv], env)
                    times.setdefault((label, g), []).append(wall)
                    cpu.setdefault((label, g), []).append(used)
        counted = {(label, g): _instructions([g, *argv], env)
                   for label, argv in cases.items() for g in gadgets} if args.instructions else {}
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"runs: {args.runs}, interleaved (the order of the installs alternates)")
    print("| command | gadget | wall min | wall median | CPU min | CPU median |")
    print("|---|---|---|---|---|---|")
    for (label, g), ts in times.items():
        cs = cpu[(label, g)]
        print(f"| {label} | {g} | {min(ts) * 1000:.0f} ms | {statistics.median(ts) * 1000:.0f} ms "
              f"| {min(cs) * 1000:.0f} ms | {statistics.median(cs) * 1000:.0f} ms |")
    if counted:
        print("\n| command | gadget | instructions (callgrind) |")
        print("|---|---|---|")
        for (label, g), n in counted.items():
            print(f"| {label} | {g} | {n / 1e6:.1f} M |")
    return 0


def _instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions the command executes (valgrind's callgrind; Python's hash seed fixed)."""
    python = str(Path(argv[0]).parent / "python")  # the install's own interpreter
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          python, *argv], env=dict(env, PYTHONHASHSEED="0"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-300:]}")
    return int(found.group(1))


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and the process's own CPU time (user + system): on a loaded machine the
    CPU time moves much less than the wall time, which includes waiting for a core."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return wall, usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
