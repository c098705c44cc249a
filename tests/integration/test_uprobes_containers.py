"""Uprobes inside containers: the library is resolved in each container's filesystem and
the container's own copy is probed (once per distinct file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import need_tool, run_gadget, skip_or_fail
from ..podman_util import Podman
from .test_buffers import build_object

MACHINE = os.uname().machine
LIBDIR = f"/usr/lib/{MACHINE}-linux-gnu"

# a uprobe on libc's getppid(), filtered by container (mount namespace) in the kernel
PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/mntns.h>
#include <gadget/mntns_filter.h>
#include <gadget/types.h>

struct event {
    gadget_mntns_id mntns_id;
    __u32 pid;
    gadget_comm comm[16];
};

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(calls, events, event);

SEC("uprobe/libc:getppid")
int BPF_KPROBE(getppid_entry)
{
    __u64 mntns_id = gadget_get_current_mntns_id();
    struct event *e;

    if (gadget_should_discard_mntns_id(mntns_id))
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->mntns_id = mntns_id;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# "caller once": 5 getppid() calls each time /tmp/go appears (the test creates it);
# "caller loop": one call every 50 ms
CALLER = r"""
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int loop = argc > 1 && strcmp(argv[1], "loop") == 0;

    for (;;) {
        if (loop) {
            getppid();
        } else if (access("/tmp/go", F_OK) == 0) {
            unlink("/tmp/go");
            for (int i = 0; i < 5; i++)
                getppid();
        }
        usleep(loop ? 50000 : 20000);
    }
}
"""


# ------------------------------------------------------------------ resolution (no root)
def _host_lib(name: str) -> str:
    path = os.path.realpath(f"{LIBDIR}/{name}")
    if not os.path.isfile(path):
        skip_or_fail(f"no {LIBDIR}/{name} on this host")
    return path


def _ldconfig(root: Path, fmt: str = "new") -> None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    subprocess.run([ldconfig, "-c", fmt, "-r", str(root)], check=True, capture_output=True)


@pytest.mark.parametrize("fmt", ["new", "old", "compat"])
def test_library_name_resolves_through_the_roots_ld_cache(tmp_path: Path, fmt: str) -> None:
    """The library sits in a directory only the root's ld.so.cache names; the host's
    resolution would find the host's libc instead."""
    from gadgetsmith.runtime.probes.uprobes import parse_ld_cache, resolve_binary, resolve_in_root

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "opt/clib").mkdir(parents=True)
    shutil.copy(_host_lib("libc.so.6"), root / "opt/clib/libc.so.6")
    (root / "etc/ld.so.conf").write_text("/opt/clib\n")
    _ldconfig(root, fmt)
    assert ("libc.so.6", "/opt/clib/libc.so.6") in parse_ld_cache(
        (root / "etc/ld.so.cache").read_bytes())
    assert resolve_in_root(str(root), "libc") == "/opt/clib/libc.so.6"
    assert resolve_in_root(str(root), "libc.so.6") == "/opt/clib/libc.so.6"
    assert resolve_binary("libc") != "/opt/clib/libc.so.6"


def test_resolution_in_a_root_never_leaves_it(tmp_path: Path) -> None:
    from gadgetsmith.runtime.probes.uprobes import NotInRoot, resolve_in_root

    root = tmp_path / "root"
    (root / f"usr/lib/{MACHINE}-linux-gnu").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib")  # absolute: means the root's /usr/lib
    lib = root / f"usr/lib/{MACHINE}-linux-gnu"
    shutil.copy(_host_lib("libm.so.6"), lib / "libm.so.6")
    (root / "usr/bin/tool").write_bytes(b"\x7fELF")
    # no ld.so.cache: the library directories, then the bin directories
    assert resolve_in_root(str(root), "libm") == f"{LIBDIR}/libm.so.6"
    assert resolve_in_root(str(root), "m") == f"{LIBDIR}/libm.so.6"
    assert resolve_in_root(str(root), "tool") == "/usr/bin/tool"
    assert resolve_in_root(str(root), f"/lib/{MACHINE}-linux-gnu/libm.so.6") == \
        f"{LIBDIR}/libm.so.6"
    # links that point out of the root are followed inside it
    (lib / "libc.so.6").symlink_to(os.path.realpath(f"{LIBDIR}/libc.so.6"))
    (lib / "libz.so.1").symlink_to("../../../../../../../../.." + os.path.realpath(
        f"{LIBDIR}/libc.so.6"))
    for name in ("libc", "libz", f"/lib/{MACHINE}-linux-gnu/libc.so.6"):
        with pytest.raises(NotInRoot):
            resolve_in_root(str(root), name)
    # ... and find the root's own file when it has one
    (root / "usr/lib/libc.so.6").write_bytes(b"\x7fELF")
    (lib / "libc.so.6").unlink()
    (lib / "libc.so.6").symlink_to("/lib/libc.so.6")
    assert resolve_in_root(str(root), "libc") == "/usr/lib/libc.so.6"


# ------------------------------------------------------------------ real containers
def _interpreter(exe: Path) -> str:
    from gadgetsmith.runtime.bpf.elf import Elf

    sec = Elf(exe.read_bytes()).section(".interp")
    assert sec is not None, f"{exe} is not dynamically linked"
    return sec.data.rstrip(b"\0").decode()


class Images:
    def __init__(self, podman: Podman, workdir: Path) -> None:
        self.podman = podman
        cc = need_tool("cc")
        caller = workdir / "caller"
        (workdir / "caller.c").write_text(CALLER)
        subprocess.run([cc, "-O2", "-o", str(caller), str(workdir / "caller.c")], check=True)
        libc = _host_lib("libc.so.6")
        # own copy of libc (another inode), found only through the image's ld.so.cache,
        # the dynamic loader at the program's interpreter path, the program
        rootfs = workdir / "withlibc"
        (rootfs / "opt/clib").mkdir(parents=True)
        (rootfs / "etc").mkdir()
        shutil.copy(libc, rootfs / "opt/clib/libc.so.6")
        interp = _interpreter(caller)
        (rootfs / interp.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(interp), rootfs / interp.lstrip("/"))
        shutil.copy(caller, rootfs / "caller")
        (rootfs / "etc/ld.so.conf").write_text("/opt/clib\n")
        _ldconfig(rootfs)
        self.withlibc = podman.import_rootfs(rootfs, "withlibc")
        # a "libc" without getppid (libm), in the library directory, and a static sleep
        rootfs = workdir / "nosym"
        (rootfs / LIBDIR.lstrip("/")).mkdir(parents=True)
        (rootfs / "bin").mkdir()
        shutil.copy(_host_lib("libm.so.6"), rootfs / LIBDIR.lstrip("/") / "libc.so.6")
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not os.path.exists(busybox):
            skip_or_fail("busybox-static is not installed")
        shutil.copy(busybox, rootfs / "bin/busybox")
        self.nosym = podman.import_rootfs(rootfs, "nosym")
        self.host_libc = os.stat(libc)

    @staticmethod
    def new_name() -> str:
        return f"gs-up-{os.urandom(4).hex()}"

    def start(self, image: str, *cmd: str, name: str = "") -> tuple[str, int]:
        name = name or self.new_name()
        self.podman.start(*cmd, name=name, network="none", image=image)
        return name, self.podman.pid(name)

    def remove(self, *names: str) -> None:
        names = tuple(n for n in names if n)
        if names:
            self.podman.run("rm", "-f", "-t", "0", "--ignore", *names)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory):
    from ..conftest import need_root

    need_root()
    work = tmp_path_factory.mktemp("upc")
    podman = Podman(work)
    imgs = Images(podman, work)
    yield imgs
    podman.cleanup()
    podman.run("rmi", "-f", imgs.withlibc, imgs.nosym, check=False)


@pytest.fixture(scope="module")
def gadget_obj(tmp_path_factory: pytest.TempPathFactory, clang_available) -> bytes:
    return build_object(tmp_path_factory.mktemp("upcg"), "ctrup", PROGRAM)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _links_of(prog_ids: list[int]) -> list[dict]:
    out = subprocess.run([need_tool("bpftool"), "-j", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    return [lk for lk in json.loads(out or "[]") if lk.get("prog_id") in prog_ids]


def test_containers_own_libc_copy_is_probed_once_per_file(images: Images,
                                                          gadget_obj: bytes) -> None:
    """Two containers of one image (one started before the gadget, one while it runs)
    carry their own libc copy; each getppid() call there is one event, and the copy is
    probed once for both. A container whose "libc" lacks getppid is one warning."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.containers.collection import (
        ContainerCollection,
        ContainerSelector,
        PodmanSource,
    )

    early, early_pid = images.start(images.withlibc, "/caller")
    late, nosym = images.new_name(), images.new_name()
    coll = ContainerCollection([PodmanSource(env=images.podman.env)])
    debug: list[str] = []
    late_pid = 0
    g = None
    prog_ids: list[int] = []
    try:
        # only this test's containers: other tests run theirs at the same time
        g = Gadget(gadget_obj, host=False, containers=coll, on_debug=debug.append,
                   selector=ContainerSelector(containername=f"{early},{late},{nosym}"))
        late, late_pid = images.start(images.withlibc, "/caller", name=late)
        nosym, _ = images.start(images.nosym, "/bin/busybox", "sleep", "1000", name=nosym)

        def owners() -> set[str]:
            return {n for a in g.uprobe_attachments() for n in a.owners.values()}

        _wait(lambda: late in owners() and any(nosym in w for w in g.warnings), 30,
              f"the probe for {late} and the warning for {nosym}")
        atts = g.uprobe_attachments()
        ctr = [a for a in atts if early in a.owners.values()]
        assert len(ctr) == 1, (atts, debug)
        assert set(ctr[0].owners.values()) == {early, late}
        assert ctr[0].path == f"/proc/{early_pid}/root/opt/clib/libc.so.6"
        assert ctr[0].file != (images.host_libc.st_dev, images.host_libc.st_ino)
        assert any(a.owners == {"host": "host"} for a in atts)  # the host's libc, as before
        assert [w for w in g.warnings if nosym in w] == [
            f"container {nosym}: program getppid_entry (uprobe/libc:getppid) is not "
            f"attached: no symbol getppid in {LIBDIR}/libc.so.6"]
        assert any(f"attached to /proc/{early_pid}/root/opt/clib/libc.so.6 for container "
                   f"{early}" in line for line in debug), debug

        for pid in (early_pid, late_pid):
            Path(f"/proc/{pid}/root/tmp/go").touch()
        counts = {early_pid: 0, late_pid: 0}
        deadline = time.monotonic() + 15
        settle = None
        while time.monotonic() < deadline:
            for ev in g.events(timeout=0.2):
                counts[ev["pid"]] = counts.get(ev["pid"], 0) + 1
                assert ev["runtime.containerName"] in (early, late)
            if settle is None and all(counts[p] >= 5 for p in (early_pid, late_pid)):
                settle = time.monotonic() + 1  # anything doubled would arrive meanwhile
            if settle is not None and time.monotonic() > settle:
                break
        assert counts == {early_pid: 5, late_pid: 5}, counts
        prog_ids = g.loaded.prog_ids()
        assert len(_links_of(prog_ids)) == 2  # the host's libc and the image's copy
        # a removed container releases its share; the last one removes the probe
        images.remove(late)
        _wait(lambda: late not in owners(), 30, f"{late} to be forgotten")
        assert len(_links_of(prog_ids)) == 2
        images.remove(early)
        _wait(lambda: early not in owners(), 30, f"{early} to be forgotten")
        assert [a.owners for a in g.uprobe_attachments()] == [{"host": "host"}]
        assert len(_links_of(prog_ids)) == 1
    finally:
        if g is not None:
            g.close()
        coll.stop()
        images.remove(early, late, nosym)
    assert prog_ids and _links_of(prog_ids) == []


@pytest.mark.parametrize("mode", ["container", "host"])
def test_cli_run_probes_the_containers_copy(images: Images, gadget_obj: bytes,
                                            tmp_path: Path, mode: str) -> None:
    name, pid = images.start(images.withlibc, "/caller", "loop")
    obj = tmp_path / "ctrup.o"
    obj.write_bytes(gadget_obj)
    sel = ["-c", name] if mode == "container" else [
        "--host", "-F", f"runtime.containerName=={name}"]
    try:
        res = run_gadget("--debug", "run", str(obj), *sel, "--count", "3", "--timeout", "15",
                         "-o", "json",
                         env={"CONTAINERS_CONF": images.podman.env["CONTAINERS_CONF"]})
    finally:
        images.remove(name)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 3 and {r["runtime"]["containerName"] for r in rows} == {name}
    assert {r["pid"] for r in rows} == {pid}
    assert (f"debug: program getppid_entry (uprobe/libc:getppid): attached to "
            f"/proc/{pid}/root/opt/clib/libc.so.6 for container {name}") in res.stderr
