"""Uprobes inside containers: the library is resolved in each container's filesystem and
the container's own copy is probed (once per distinct file)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MACHINE = os.uname().machine
LIBDIR = f"/usr/lib/{MACHINE}-linux-gnu"

# ------------------------------------------------------------------ resolution (no root)
def _host_lib(name: str) -> str:
    path = os.path.realpath(f"{LIBDIR}/{name}")
    if not os.path.isfile(path):
        pytest.skip(f"no {LIBDIR}/{name} on this host")
    return path


def _ldconfig(root: Path, fmt: str = "new") -> None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    subprocess.run([ldconfig, "-c", fmt, "-r", str(root)], check=True, capture_output=True)


@pytest.mark.parametrize("fmt", ["new", "old", "compat"])
def test_library_name_resolves_through_the_roots_ld_cache(tmp_path: Path, fmt: str) -> None:
    """The library sits in a directory only the root's ld.so.cache names; the host's
    resolution would find the host's libc instead."""
    from gadgetsmith.runtime.uprobes import parse_ld_cache, resolve_binary, resolve_in_root

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
    from gadgetsmith.runtime.uprobes import NotInRoot, resolve_in_root

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
