"""skopeo (an independent client) and fault injection against a real docker-registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from gadgetsmith.toolchain.oci.store import open_store

from ..conftest import need_root, need_tool, run_gadget
from ..registry_util import FaultProxy, registry, registry_server  # noqa: F401 - fixtures
from .test_archive import snapshot
from .test_registry import make_image, store_digest


def skopeo(*args: str) -> subprocess.CompletedProcess:
    exe = need_tool("skopeo")
    proc = subprocess.run([exe, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_skopeo_reads_what_we_push_and_we_pull_what_skopeo_pushes(registry, tmp_path: Path) -> None:
    s = tmp_path / "s"
    ref = f"{registry.host}/obs/g:v1"
    digest = make_image(s, ref, size=50_000)
    run_gadget("push", ref, *registry.client_args(), store=s)

    layout = tmp_path / "layout"
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{ref}", f"oci:{layout}:v1")
    index = json.loads((layout / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]
    # every blob skopeo fetched is byte-identical to ours
    ours = {p.name: p.read_bytes() for p in (s / "blobs/sha256").iterdir()}
    theirs = {p.name: p.read_bytes() for p in (layout / "blobs/sha256").iterdir()}
    assert theirs == ours

    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           f"oci:{layout}:v1", f"docker://{registry.host}/skopeo/g:v2")
    d = tmp_path / "d"
    run_gadget("pull", f"{registry.host}/skopeo/g:v2", *registry.client_args(), store=d)
    assert store_digest(d, f"{registry.host}/skopeo/g:v2") == digest
    info = run_gadget("inspect", f"{registry.host}/skopeo/g:v2", "--format", "json", store=d).json()
    assert [m["platform"]["architecture"] for m in info["manifests"]] == ["amd64", "arm64"]


@pytest.mark.usefixtures("clang_available")
def test_built_gadget_survives_skopeo_and_runs(registry, tiny_gadget: Path, tmp_path: Path) -> None:
    """build -> push -> skopeo copy to another repo -> pull into a fresh store -> run."""
    need_root("running a gadget needs root")
    s = tmp_path / "s"
    ref = f"{registry.host}/obs/tiny:v1"
    run_gadget("build", str(tiny_gadget), "-t", ref, "--arch", "amd64", store=s)
    run_gadget("push", ref, *registry.client_args(), store=s)
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{ref}", f"docker://{registry.host}/mirror/tiny:v1")
    d = tmp_path / "d"
    run_gadget("pull", f"{registry.host}/mirror/tiny:v1", *registry.client_args(), store=d)
    assert store_digest(d, f"{registry.host}/mirror/tiny:v1") == store_digest(s, ref)
    trigger = subprocess.Popen(["python3", "-c", "import os,time\nfor _ in range(40):\n"
                                " os.getpid(); time.sleep(0.1)"])
    res = run_gadget("run", f"{registry.host}/mirror/tiny:v1", "--host", "--timeout", "3",
                     "-o", "json", store=d)
    trigger.wait()
    events = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
    assert events and "pid" in events[0]


def test_registry_stopped_mid_push_then_retried(registry, tmp_path: Path) -> None:
    s = tmp_path / "s"
    digest = make_image(s, "x/y:v1", size=200_000)
    stopped = []

    def hook(method: str, path: str):
        if method == "PUT" and "/blobs/uploads/" in path and not stopped:
            stopped.append(path)
            registry.stop()
        return None

    proxy = FaultProxy(registry.host, hook)
    try:
        before = snapshot(s)
        dest = f"{proxy.host}/obs/y:v1"
        res = run_gadget("push", "x/y:v1", dest, "--insecure-registries", proxy.host,
                         store=s, check=False)
        assert res.returncode == 1, res
        assert "cannot reach registry" in res.stderr or "answered HTTP 5" in res.stderr
        assert proxy.host in res.stderr
        assert "Traceback" not in res.stderr
        assert snapshot(s) == before  # push never changes the local store
        registry.start()
        out = run_gadget("push", "x/y:v1", dest, "--insecure-registries", proxy.host,
                         "--format", "json", store=s).json()
        assert out["digest"] == digest
        d = tmp_path / "d"
        run_gadget("pull", dest, "--insecure-registries", proxy.host, store=d)
        assert store_digest(d, dest) == digest
    finally:
        proxy.close()


def test_registry_stopped_mid_pull_leaves_store_consistent(registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/obs/p:v1"
    make_image(tmp_path / "s", ref, size=200_000)
    run_gadget("push", ref, *registry.client_args(), store=tmp_path / "s")
    state = {"n": 0}

    def hook(method: str, path: str):
        if method == "GET" and "/blobs/" in path:
            state["n"] += 1
            if state["n"] == 2:
                registry.stop()
        return None

    proxy = FaultProxy(registry.host, hook)
    try:
        d = tmp_path / "d"
        make_image(d, "local/kept:v1", seed=b"k")
        before = snapshot(d)
        res = run_gadget("pull", f"{proxy.host}/obs/p:v1", "--insecure-registries", proxy.host,
                         store=d, check=False)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res
        assert snapshot(d) == before
        assert not list(d.glob(".tmp-*"))
        assert [e.reference for e in open_store(d).entries()] == ["ghcr.io/local/kept:v1"]
    finally:
        proxy.close()


def test_blob_with_wrong_digest_is_refused(registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/obs/c:v1"
    make_image(tmp_path / "s", ref, size=10_000)
    run_gadget("push", ref, *registry.client_args(), store=tmp_path / "s")

    def hook(method: str, path: str):
        return "corrupt" if method == "GET" and "/blobs/sha256:" in path else None

    proxy = FaultProxy(registry.host, hook)
    try:
        d = tmp_path / "d"
        res = run_gadget("pull", f"{proxy.host}/obs/c:v1", "--insecure-registries", proxy.host,
                         store=d, check=False)
        assert res.returncode == 1, res
        assert "does not match its digest" in res.stderr and "nothing stored" in res.stderr
        assert open_store(d).entries() == []
        assert not any((d / "blobs" / "sha256").iterdir())
        # a corrupted manifest is caught the same way
        res = run_gadget("copy", f"{proxy.host}/obs/c:v1", f"{registry.host}/copy/c:v1",
                         "--insecure-registries", f"{proxy.host},{registry.host}", check=False)
        assert res.returncode == 1 and "digest" in res.stderr, res
    finally:
        proxy.close()


def test_corrupted_manifest_is_refused(registry, tmp_path: Path) -> None:
    ref = f"{registry.host}/obs/m:v1"
    make_image(tmp_path / "s", ref)
    run_gadget("push", ref, *registry.client_args(), store=tmp_path / "s")

    def hook(method: str, path: str):
        return "corrupt" if method == "GET" and "/manifests/sha256:" in path else None

    proxy = FaultProxy(registry.host, hook)
    try:
        d = tmp_path / "d"
        res = run_gadget("pull", f"{proxy.host}/obs/m:v1", "--insecure-registries", proxy.host,
                         store=d, check=False)
        assert res.returncode == 1 and "digest" in res.stderr, res
        assert open_store(d).entries() == []
    finally:
        proxy.close()


def test_transient_failures_are_retried(registry, tmp_path: Path) -> None:
    """503, 429, dropped connections and downloads cut short are retried; 404 is not."""
    s = tmp_path / "s"
    digest = make_image(s, "x/r:v1", size=50_000)
    faults = {("HEAD", "/blobs/"): 503, ("PUT", "/blobs/uploads/"): 429, ("GET", "/manifests/v1"): "drop",
              ("GET", "/blobs/sha256:"): 502, ("GET", "/blobs/sha"): "cut"}
    fired: dict = {}

    def hook(method: str, path: str):
        for (m, frag), action in faults.items():
            if method == m and frag in path and (m, frag) not in fired:
                fired[(m, frag)] = path
                return action
        return None

    proxy = FaultProxy(registry.host, hook)
    try:
        dest = f"{proxy.host}/obs/r:v1"
        ins = ["--insecure-registries", proxy.host]
        out = run_gadget("push", "x/r:v1", dest, *ins, "--format", "json", store=s).json()
        assert out["digest"] == digest
        run_gadget("pull", dest, *ins, store=tmp_path / "d")
        assert store_digest(tmp_path / "d", dest) == digest
        assert set(fired) == set(faults)
        cut = fired[("GET", "/blobs/sha")]
        assert proxy.requests.count(("GET", cut)) == 2  # cut short once, then whole
        assert not list((tmp_path / "d").glob(".tmp-*"))
        before = len(proxy.requests)
        res = run_gadget("pull", f"{proxy.host}/obs/none:v1", *ins, store=tmp_path / "e", check=False)
        assert res.returncode == 1 and "not found" in res.stderr
        assert len(proxy.requests) - before == 1  # a 404 is an answer, not a fault
    finally:
        proxy.close()
