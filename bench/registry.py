#!/usr/bin/env python3
"""Benchmark `gadget push`/`gadget pull` against `skopeo copy` on a local docker-registry.

For each image (a built sample gadget, and a synthetic one with a large layer) and each
run, on a fresh registry (so neither client can mount blobs it has seen elsewhere), with
the order of the two push commands alternating between runs:

  push:    gadget push IMG HOST/gN/x:v1            vs  skopeo copy --all oci:LAYOUT:v1 docker://HOST/sN/x:v1
  pull:    gadget pull HOST/gN/x:v1 (fresh store)  vs  skopeo copy --all docker://HOST/gN/x:v1 oci:FRESH:v1
  re-push: gadget push IMG HOST/gN/x:v1 again (nothing changed)

Prints medians and the ratios push/skopeo, pull/skopeo (target <= 1.0) and
re-push/push (target <= 0.2). Everything is wall time of the command line, start-up
included.

Usage: .venv/bin/python bench/registry.py [--runs N] [--big-mb MB]
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
GADGET = str(Path(sys.executable).parent / "gadget")


def timed(argv: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--big-mb", type=int, default=32)
    args = ap.parse_args()

    from gadgetsmith.toolchain.oci.assemble import ArchContent, build_image
    from gadgetsmith.toolchain.oci.store import open_store
    from gadgetsmith.toolchain.registry.api import RemoteOptions, pull_image, push_image

    from tests.registry_util import RegistryServer

    # Measure the CLI as installed: pip byte-compiles a regular install, but this checkout
    # is an editable one, and with PYTHONDONTWRITEBYTECODE set (as on the CI machines)
    # every `gadget` process would re-compile the project's modules from source.
    for folder in ("toolchain", "runtime"):
        compileall.compile_dir(str(REPO / folder), quiet=1)

    work = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    store = work / "store"
    env = dict(os.environ, GADGETSMITH_STORE=str(store))
    subprocess.run([GADGET, "build", str(REPO / "sample-gadgets" / "trace_open"), "-t", "sample:v1"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    big = os.urandom(args.big_mb * 1024 * 1024)
    img = build_image(b"name: big\n", {"name": "big"},
                      # two different layers (the last byte differs): 64 MiB in all
                      {a: ArchContent(ebpf=big[:-1] + bytes([i])) for i, a in enumerate(("amd64", "arm64"))},
                      "2026-11-23T00:00:00Z")
    open_store(store).add_image(img.blobs, img.index_descriptor, "ghcr.io/bench/big:v1")

    # a seed registry from which skopeo makes its OCI layouts
    seed_reg = RegistryServer(work / "seed").start()
    images = (("trace_open (2 arches)", "sample:v1"), (f"synthetic {args.big_mb} MiB x2", "bench/big:v1"))
    layouts = {}
    results: dict[str, dict[str, float]] = {}
    try:
        for n, (name, local) in enumerate(images):
            seed = f"{seed_reg.host}/seed/i{n}:v1"
            subprocess.run([GADGET, "push", local, seed, "--insecure-registries", seed_reg.host],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            layouts[name] = work / f"layout-{n}"
            subprocess.run(["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests",
                            "--src-tls-verify=false", f"docker://{seed}", f"oci:{layouts[name]}:v1"],
                           check=True, stdout=subprocess.DEVNULL)
    finally:
        seed_reg.stop()
    sk = ["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests"]
    for n, (name, local) in enumerate(images):
        t: dict[str, list[float]] = {k: [] for k in ("push", "skopeo_push", "pull", "skopeo_pull",
                                                     "repush", "floor", "api_push", "api_repush",
                                                     "api_pull")}
        for i in range(args.runs):
            # a fresh registry per run: neither client can mount blobs it saw elsewhere
            reg = RegistryServer(work / f"reg-{n}-{i}").start()
            host = reg.host
            ins = ["--insecure-registries", host]
            gref, sref = f"{host}/g/x:v1", f"{host}/s/x:v1"
            try:
                runs = {"push": [GADGET, "push", local, gref, *ins],
                        "skopeo_push": [*sk, "--dest-tls-verify=false", f"oci:{layouts[name]}:v1",
                                        f"docker://{sref}"]}
                for key in (("push", "skopeo_push") if i % 2 == 0 else ("skopeo_push", "push")):
                    t[key].append(timed(runs[key], env))
                t["repush"].append(timed([GADGET, "push", local, gref, *ins], env))
                t["floor"].append(timed([GADGET, "list"], env))
                # the same operations through the library, without interpreter start-up
                opts = RemoteOptions(insecure_registries=[host])
                aref = f"{host}/api/x:v1"
                t0 = time.perf_counter()
                push_image(local, dest=aref, store_path=store, options=opts)
                t["api_push"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                push_image(local, dest=aref, store_path=store, options=opts)
                t["api_repush"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                pull_image(aref, store_path=work / f"api-{n}-{i}", options=opts)
                t["api_pull"].append(time.perf_counter() - t0)
                shutil.rmtree(work / f"api-{n}-{i}", ignore_errors=True)
                fresh, skdir = work / f"pull-{n}-{i}", work / f"sk-{n}-{i}"
                t["pull"].append(timed([GADGET, "pull", gref, *ins], dict(env, GADGETSMITH_STORE=str(fresh))))
                t["skopeo_pull"].append(timed([*sk, "--src-tls-verify=false", f"docker://{gref}",
                                               f"oci:{skdir}:v1"]))
                shutil.rmtree(fresh, ignore_errors=True)
                shutil.rmtree(skdir, ignore_errors=True)
            finally:
                reg.stop()
                shutil.rmtree(work / f"reg-{n}-{i}", ignore_errors=True)
        results[name] = {k: statistics.median(v) for k, v in t.items()}
    shutil.rmtree(work, ignore_errors=True)

    # what any Python command line pays before its own work, on this machine now
    floors = {"python -c pass": [sys.executable, "-c", "pass"],
              "python -c 'import typer'": [sys.executable, "-c", "import typer"],
              "gadget --version": [GADGET, "--version"]}
    floor_ms = {k: 1000 * statistics.median(timed(v) for _ in range(max(args.runs, 5)))
                for k, v in floors.items()}

    print(f"runs: {args.runs} (medians)")
    print("start-up floors: " + ", ".join(f"{k} {v:.0f} ms" for k, v in floor_ms.items()))
    print("| image | gadget push | skopeo push | push ratio | gadget pull | skopeo pull | pull ratio "
          "| re-push | re-push/push | `gadget list` (CLI floor) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m['push'] * 1000:.0f} ms | {m['skopeo_push'] * 1000:.0f} ms | "
              f"**{m['push'] / m['skopeo_push']:.2f}** | {m['pull'] * 1000:.0f} ms | "
              f"{m['skopeo_pull'] * 1000:.0f} ms | **{m['pull'] / m['skopeo_pull']:.2f}** | "
              f"{m['repush'] * 1000:.0f} ms | **{m['repush'] / m['push']:.2f}** | "
              f"{m['floor'] * 1000:.0f} ms |")
    print()
    print("In-process (library API, no interpreter start-up):")
    print("| image | API push | /skopeo push | API pull | /skopeo pull | API re-push | re-push/push |")
    print("|---|---|---|---|---|---|---|")
    for name, m in results.items():
        print(f"| {name} | {m['api_push'] * 1000:.0f} ms | **{m['api_push'] / m['skopeo_push']:.2f}** | "
              f"{m['api_pull'] * 1000:.0f} ms | **{m['api_pull'] / m['skopeo_pull']:.2f}** | "
              f"{m['api_repush'] * 1000:.0f} ms | **{m['api_repush'] / m['api_push']:.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
