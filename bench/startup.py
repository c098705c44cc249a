#!/usr/bin/env python3
"""Command-line start-up of `gadget`: one or more installs compared, interleaved.

Starts a docker-registry on 127.0.0.1, builds and pushes the trace_open sample once, then
runs, in turn for every given `gadget` executable (default: this checkout's), N times:

  gadget list                       (no registry code)
  gadget push IMG HOST/b/x:v1       (unchanged re-push: one HEAD request)
  gadget pull HOST/b/x:v1           (already in the store: manifests only)

and prints min and median wall time per command and install. To compare with another
commit: `git worktree add /tmp/old COMMIT && make -C /tmp/old setup`, then
`.venv/bin/python bench/startup.py --gadget /tmp/old/.venv/bin/gadget --gadget .venv/bin/gadget`.

Usage: .venv/bin/python bench/startup.py [--runs N] [--gadget PATH ...]
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
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--gadget", action="append", default=None)
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
        for _ in range(args.runs):
            for label, argv in cases.items():
                for g in gadgets:
                    t0 = time.perf_counter()
                    subprocess.run([g, *argv], check=True, env=env, stdout=subprocess.DEVNULL)
                    times.setdefault((label, g), []).append(time.perf_counter() - t0)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"runs: {args.runs}, interleaved")
    print("| command | gadget | min | median |")
    print("|---|---|---|---|")
    for (label, g), ts in times.items():
        print(f"| {label} | {g} | {min(ts) * 1000:.0f} ms | {statistics.median(ts) * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
