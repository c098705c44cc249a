"""The btfgen layer at run time: which minimised BTF a kernel without BTF gets.

An image's btfgen layer (``application/vnd.gadget.btfgen.v1+binary``) is a tar.gz of
``ID/VERSION_ID/ARCH/RELEASE.btf`` files, btfhub's layout. On a kernel without
``/sys/kernel/btf/vmlinux`` the entry for this machine is picked, as ig's runtime does:
``ID`` and ``VERSION_ID`` from /etc/os-release, ``uname -m``, ``uname -r``. btfhub (and
``gadget build --btfgen``) name arm64 folders ``arm64`` where ``uname -m`` says
``aarch64``; both names are looked for.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import platform
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gadgetsmith.runtime.errors import BtfgenError

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
#: set to "none" to act as if the kernel had no BTF (the image's bundle is used), or to a
#: BTF file to use for CO-RE relocations instead of the kernel's
OVERRIDE_ENV = "GADGETSMITH_KERNEL_BTF"
_MACHINE_ALIASES = {"aarch64": ("aarch64", "arm64"), "arm64": ("arm64", "aarch64")}
MAX_ENTRY = 64 << 20


@dataclass(frozen=True)
class HostKey:
    os_id: str
    version_id: str
    machine: str  # uname -m
    release: str  # uname -r

    def names(self) -> list[str]:
        """Layer entry names this machine matches, the exact (ig's) one first."""
        machines = _MACHINE_ALIASES.get(self.machine, (self.machine,))
        return [f"{self.os_id}/{self.version_id}/{m}/{self.release}.btf" for m in machines]

    def __str__(self) -> str:
        return self.names()[0].removesuffix(".btf")


def os_release(path: str = "/etc/os-release") -> tuple[str, str]:
    """(ID, VERSION_ID), quotes stripped; /usr/lib/os-release when /etc has none."""
    vals: dict[str, str] = {}
    for p in (path, "/usr/lib/os-release"):
        try:
            text = Path(p).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                vals[k.strip()] = v.strip().strip("\"'")
        break
    return vals.get("ID", ""), vals.get("VERSION_ID", "")


def host_key() -> HostKey:
    os_id, version_id = os_release()
    u = platform.uname()
    return HostKey(os_id, version_id, u.machine, u.release)


def read_layer(data: bytes) -> dict[str, bytes]:
    """Entry name -> bytes of a btfgen layer (regular files; a ``./`` prefix dropped)."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tf:
            for m in tf:
                if not m.isfile() or m.size > MAX_ENTRY:
                    continue
                f = tf.extractfile(m)
                if f is not None:
                    out[m.name.removeprefix("./")] = f.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise BtfgenError(f"the image's btfgen layer is not a readable tar.gz ({e})") from None
    return out


def kernel_has_btf() -> bool:
    if os.environ.get(OVERRIDE_ENV, "") == "none":
        return False
    return os.path.exists(KERNEL_BTF)


def pick(layer: bytes | None, key: HostKey | None = None) -> bytes:
    """This machine's minimised BTF from a btfgen layer, or one line saying what is missing."""
    key = key or host_key()
    if layer is None:
        raise BtfgenError(
            f"this kernel has no BTF ({KERNEL_BTF}) and the image has no btfgen layer: "
            "rebuild it with 'gadget build --btfgen --btfhub-archive DIR' with this kernel "
            f"({key}) in the archive")
    entries = read_layer(layer)
    for name in key.names():
        if name in entries:
            return entries[name]
    # ig's builds since v0.52 flatten the folders: RELEASE.btf at the top
    flat = f"{key.release}.btf"
    if flat in entries:
        return entries[flat]
    have = sorted(n.removesuffix(".btf") for n in entries)
    shown = ", ".join(have[:8]) + (f" and {len(have) - 8} more" if len(have) > 8 else "")
    raise BtfgenError(
        f"this kernel has no BTF ({KERNEL_BTF}) and the image's btfgen layer has no "
        f"{key}; it has {len(have)} kernel(s){': ' + shown if have else ''}")


def needs_bundle() -> bool:
    """True when libbpf must get its CO-RE BTF from the image (see :func:`btf_for_load`)."""
    override = os.environ.get(OVERRIDE_ENV, "")
    if override and override != "none":
        return False
    return not kernel_has_btf()


@contextlib.contextmanager
def btf_for_load(layer: bytes | None) -> Iterator[str | None]:
    """The BTF file to hand libbpf as ``btf_custom_path`` for the load, or None.

    None when the kernel has BTF (libbpf reads /sys/kernel/btf/vmlinux itself). Otherwise
    this machine's entry of the image's btfgen ``layer``, in a temp file that exists for
    the ``with`` block (libbpf reads it while loading). ``GADGETSMITH_KERNEL_BTF=none``
    acts as if the kernel had no BTF; ``GADGETSMITH_KERNEL_BTF=FILE`` uses that file.
    """
    override = os.environ.get(OVERRIDE_ENV, "")
    if override and override != "none":
        if not os.path.isfile(override):
            raise BtfgenError(f"{OVERRIDE_ENV}={override}: no such file")
        yield override
        return
    if kernel_has_btf():
        yield None
        return
    data = pick(layer)
    fd, path = tempfile.mkstemp(prefix="gadget-btf-", suffix=".btf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
