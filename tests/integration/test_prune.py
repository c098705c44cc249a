"""kill -9 of build and pull: temporary data stays inside the store, named after its
process, and the next writer (or `gadget prune`) removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ..conftest import GADGET, run_gadget
from ..registry_util import FaultProxy, registry, registry_server  # noqa: F401 - fixtures
from .test_registry import make_image


def _env(store: Path, tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GADGETSMITH_DEBUG", None)
    env["GADGETSMITH_STORE"] = str(store)
    env["TMPDIR"] = str(tmpdir)  # a system temp directory of the test's own, to look into
    return env


def _wait_for(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _processes_using(path: Path) -> list[int]:
    """Processes (the killed command's clang children) whose command line names ``path``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(path).encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _temporaries(store: Path) -> list[str]:
    names = [p.name for p in store.glob(".tmp-*")]
    names += [f"blobs/sha256/{p.name}" for p in (store / "blobs" / "sha256").glob(".tmp-*")]
    return sorted(names)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.usefixtures("clang_available")
def test_kill_9_of_build_leaves_its_objects_in_the_store_and_the_next_build_removes_them(
        tiny_gadget: Path, store: Path, tmp_path: Path) -> None:
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = _env(store, systmp)
    proc = subprocess.Popen([GADGET, "build", str(tiny_gadget), "-t", "killed:1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: list(store.glob(".tmp-build-*")) or proc.poll() is not None,
              "the build's directory")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for(lambda: not _processes_using(store), "clang, started by the killed build, to end")
    left = _temporaries(store)
    assert left and all(f".tmp-build-{proc.pid}." in n for n in left), left
    assert list(systmp.iterdir()) == [], "nothing of a stored build goes to the system temp dir"
    assert run_gadget("list", "--format", "json", store=store).json() == []
    # the next writer removes what the killed build left, once it holds the store lock
    res = subprocess.run([GADGET, "build", str(tiny_gadget), "-t", "next:1", "--arch", "amd64"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Successfully built ghcr.io/inspektor-gadget/gadget/next:1@sha256:")
    assert _temporaries(store) == []
    assert list(systmp.iterdir()) == []


@pytest.mark.usefixtures("clang_available")
def test_kill_9_of_a_build_without_store_is_removed_by_the_next_build(
        tiny_gadget: Path, tmp_path: Path) -> None:
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = _env(tmp_path / "store", systmp)
    proc = subprocess.Popen([GADGET, "build", str(tiny_gadget), "--no-store"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: list(systmp.glob("gadget-build-*")) or proc.poll() is not None,
              "the build's directory")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for(lambda: not _processes_using(systmp), "clang, started by the killed build, to end")
    left = [p.name for p in systmp.iterdir()]
    assert left and all(n.startswith(f"gadget-build-{proc.pid}.") for n in left), left
    res = subprocess.run([GADGET, "build", str(tiny_gadget), "--no-store", "--arch", "amd64"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert list(systmp.iterdir()) == []


def test_kill_9_of_pull_leaves_the_store_as_it_was_and_the_next_pull_cleans_up(
        registry, tmp_path: Path) -> None:  # noqa: F811 - fixture
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = f"{registry.host}/obs/killed:v1"
    digest = make_image(src, ref, size=400_000)
    run_gadget("push", ref, "--insecure-registries", registry.host, store=src)
    release = threading.Event()
    blob_asked = threading.Event()

    def hold_blobs(method: str, path: str):
        if "/blobs/" in path and method == "GET":
            blob_asked.set()
            release.wait(60)  # the pull stays in the middle of its transfer
        return None

    proxy = FaultProxy(registry.host, hold_blobs)
    try:
        run_gadget("list", store=dst)  # an existing, empty store
        proc = subprocess.Popen(
            [GADGET, "pull", f"{proxy.host}/obs/killed:v1", "--insecure-registries", proxy.host],
            env=_env(dst, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: blob_asked.is_set() or proc.poll() is not None, "a blob request")
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        release.set()
        proxy.close()
    left = _temporaries(dst)
    assert left and all(n.startswith(f".tmp-pull-{proc.pid}.") for n in left), left
    assert run_gadget("list", "--format", "json", store=dst).json() == []
    assert [p for p in (dst / "blobs" / "sha256").iterdir()] == []
    res = run_gadget("pull", ref, "--insecure-registries", registry.host, store=dst)
    assert res.stdout.startswith(f"Pulled {ref}@{digest}:"), res
    assert _temporaries(dst) == []


def test_prune_removes_unreferenced_blobs_and_stale_temporaries(tmp_path: Path) -> None:
    from gadgetsmith.toolchain.fsutil import owner_tag

    store = tmp_path / "store"
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    env = {"TMPDIR": str(systmp)}
    make_image(store, "reg.example.com/obs/kept:v1")
    blobs = store / "blobs" / "sha256"
    orphan = blobs / ("ab" * 32)
    orphan.write_bytes(b"o" * 1500)
    dead = _dead_pid()
    stale_dir = store / f".tmp-build-{dead}.1234-abcd_123"
    stale_dir.mkdir()
    (stale_dir / "amd64.bpf.o").write_bytes(b"x" * 2000)
    stale_blob = blobs / f".tmp-{dead}.1234-zzzz"
    stale_blob.write_bytes(b"y" * 500)
    live = store / f".tmp-pull-{owner_tag()}-live0001"  # this test's process is running
    live.mkdir()
    sys_stale = systmp / f"gadget-build-{dead}.1234-qqqq"
    sys_stale.mkdir()
    (sys_stale / "arm64.bpf.o").write_bytes(b"z" * 1000)
    other = systmp / "gadget-wasm-stderr-abc"  # no owner in the name: not ours to judge
    other.write_bytes(b"")
    before = sorted(p.name for p in blobs.iterdir())

    res = run_gadget("prune", "--dry-run", store=store, env=env)
    lines = res.stdout.splitlines()
    assert lines[0] == f"Would delete blob sha256:{'ab' * 32} (1.5 kB)", res
    assert f"Would delete temporary data {sys_stale} (1.0 kB)" in lines
    assert f"Would delete temporary data {stale_dir} (2.0 kB)" in lines
    assert f"Would delete temporary data {stale_blob} (500 B)" in lines
    assert lines[-1] == "Would reclaim: 5.0 kB", res
    assert sorted(p.name for p in blobs.iterdir()) == before and stale_dir.is_dir()

    res = run_gadget("prune", "--format", "json", store=store, env=env).json()
    assert res["freed"] == 5000 and [b["digest"] for b in res["blobs"]] == [f"sha256:{'ab' * 32}"]
    assert not orphan.exists() and not stale_dir.exists() and not stale_blob.exists()
    assert not sys_stale.exists()
    assert live.is_dir() and other.exists()
    assert run_gadget("list", "--format", "json", store=store).json()[0]["tag"] == "v1"
    run_gadget("inspect", "reg.example.com/obs/kept:v1", store=store)
    res = run_gadget("prune", store=store, env=env)
    assert res.stdout == "Total reclaimed space: 0 B\n", res
