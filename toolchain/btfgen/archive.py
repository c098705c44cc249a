"""Kernel BTF archives in btfhub's layout.

An archive is a folder of ``ID/VERSION_ID/ARCH/RELEASE.btf.tar.xz`` files (btfhub-archive's
own layout: a tar.xz holding ``RELEASE.btf``) or of plain ``ID/VERSION_ID/ARCH/RELEASE.btf``
files, e.g. ``ubuntu/20.04/x86_64/5.8.0-55-generic.btf.tar.xz``. ``ID`` and
``VERSION_ID`` are /etc/os-release's, ``ARCH`` is btfhub's name (``x86_64``, ``arm64``)
and ``RELEASE`` is ``uname -r``. Nothing here writes into an archive except
:func:`write_entry` (``gadget btf import``); reading never extracts into it.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import atomic_write

#: gadget architecture -> btfhub's folder name
BTFHUB_ARCH = {"amd64": "x86_64", "arm64": "arm64"}
#: folder name -> gadget architecture (``aarch64`` is ``uname -m`` on arm64)
FOLDER_ARCH = {"x86_64": "amd64", "amd64": "amd64", "arm64": "arm64", "aarch64": "arm64"}

TAR_XZ = ".btf.tar.xz"
PLAIN = ".btf"
#: a kernel's BTF is 3-10 MB; anything far bigger in an archive entry is not a BTF blob
MAX_BTF = 256 << 20

BTF_MAGIC = 0xEB9F
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")


@dataclass(frozen=True)
class KernelEntry:
    """One kernel of an archive."""

    distro: str  # os-release ID: debian, ubuntu, centos ...
    version: str  # os-release VERSION_ID: 12, 20.04 ...
    arch_dir: str  # btfhub's folder name: x86_64, arm64
    release: str  # uname -r
    path: Path

    @property
    def arch(self) -> str | None:
        """The gadget architecture (amd64, arm64), or None for another one (s390x ...)."""
        return FOLDER_ARCH.get(self.arch_dir)

    @property
    def key(self) -> str:
        return f"{self.distro}/{self.version}/{self.arch_dir}/{self.release}"

    @property
    def layer_name(self) -> str:
        """The entry's name in an image's btfgen layer (what ig's runtime looks up)."""
        return f"{self.key}.btf"

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(TAR_XZ)

    def as_dict(self) -> dict[str, Any]:
        try:
            size = self.path.stat().st_size
        except OSError:
            size = None
        return {"id": self.distro, "versionId": self.version, "arch": self.arch_dir,
                "release": self.release, "path": str(self.path), "size": size}


def _subdirs(d: Path) -> list[Path]:
    try:
        return sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def scan_archive(root: Path | str, arches: set[str] | None = None) -> list[KernelEntry]:
    """Every kernel under ``root`` (for ``arches``, gadget names, when given), by key.

    When a kernel is there both as ``.btf`` and ``.btf.tar.xz``, the plain file is used.
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(
            f"{root}: not a directory (give a btfhub-archive checkout, or a folder made "
            "by 'gadget btf import')")
    found: dict[str, KernelEntry] = {}
    for distro in _subdirs(root):
        for version in _subdirs(distro):
            for arch_dir in _subdirs(version):
                arch = FOLDER_ARCH.get(arch_dir.name)
                if arches is not None and arch not in arches:
                    continue
                for f in sorted(arch_dir.iterdir()):
                    if f.name.endswith(TAR_XZ):
                        release = f.name[: -len(TAR_XZ)]
                    elif f.name.endswith(PLAIN):
                        release = f.name[: -len(PLAIN)]
                    else:
                        continue
                    if not release or not f.is_file():
                        continue
                    e = KernelEntry(distro.name, version.name, arch_dir.name, release, f)
                    old = found.get(e.key)
                    if old is None or (old.compressed and not e.compressed):
                        found[e.key] = e
    return [found[k] for k in sorted(found)]


def read_btf(entry: KernelEntry | Path, raw: bytes | None = None) -> bytes:
    """The kernel BTF of an archive entry, checked (header, architecture). ``raw``: the
    file's bytes when the caller has read them already."""
    path = entry.path if isinstance(entry, KernelEntry) else Path(entry)
    try:
        size = path.stat().st_size if raw is None else len(raw)
    except OSError as e:
        raise UsageError(f"{path}: cannot read it ({e.strerror})") from None
    if size == 0:
        raise UsageError(
            f"{path}: empty file (btfhub has shipped some empty archives): "
            "delete it or fetch it again")
    if path.name.endswith(TAR_XZ):
        data = _read_tar_xz(path, raw)
    else:
        if size > MAX_BTF:
            raise UsageError(f"{path}: {size} bytes is too big for a kernel BTF")
        data = path.read_bytes() if raw is None else raw
    check_btf(data, path)
    if isinstance(entry, KernelEntry) and entry.arch is not None:
        found = btf_arch(data)
        if found is not None and found != entry.arch:
            raise UsageError(
                f"{path}: this BTF is of an {BTFHUB_ARCH[found]} kernel but the file is "
                f"under {entry.arch_dir}/: move it to "
                f"{entry.distro}/{entry.version}/{BTFHUB_ARCH[found]}/")
    return data


def _read_tar_xz(path: Path, raw_file: bytes | None = None) -> bytes:
    # one decompression call for the whole file: it runs without the GIL, so several
    # kernels decompress in parallel (tarfile's streaming reads would take the GIL back
    # every few KB and, on a busy machine, make the threads wait for each other)
    try:
        dec = lzma.LZMADecompressor()
        raw = dec.decompress(path.read_bytes() if raw_file is None else raw_file, MAX_BTF + (1 << 20))
        if not dec.eof:
            raise UsageError(f"{path}: the .tar.xz is truncated or holds more than a kernel BTF: "
                             "delete it or fetch it again")
    except (lzma.LZMAError, EOFError) as e:
        raise UsageError(f"{path}: not a readable .tar.xz ({e}): delete it or fetch it again") \
            from None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            for m in tf:
                if m.isfile() and m.name.endswith(PLAIN):
                    if m.size > MAX_BTF:
                        raise UsageError(f"{path}: member {m.name} ({m.size} bytes) is too big "
                                         "for a kernel BTF")
                    f = tf.extractfile(m)
                    assert f is not None
                    return f.read()
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as e:
        raise UsageError(f"{path}: not a readable .tar.xz ({e}): delete it or fetch it again") \
            from None
    raise UsageError(f"{path}: the archive holds no .btf file")


def check_btf(data: bytes, where: Path | str) -> None:
    """Raise a one-line :class:`UsageError` unless ``data`` looks like a complete BTF blob."""
    if len(data) < 24:
        raise UsageError(f"{where}: not a BTF file ({len(data)} bytes)")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != BTF_MAGIC:
        raise UsageError(f"{where}: not a BTF file (bad magic {data[:2].hex()}; "
                         "big-endian kernels are not supported)")
    if version != 1 or hdr_len < 24 or hdr_len > len(data):
        raise UsageError(f"{where}: corrupt BTF header (version {version}, header {hdr_len} bytes)")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
    end = hdr_len + max(type_off + type_len, str_off + str_len)
    if end > len(data) or str_len == 0 or data[hdr_len + str_off] != 0:
        raise UsageError(f"{where}: corrupt or truncated BTF (sections end at byte {end}, "
                         f"the file has {len(data)})")


def btf_arch(data: bytes) -> str | None:
    """The architecture (amd64, arm64) of a *kernel* BTF, from types only it defines."""
    if b"\0cpuinfo_x86\0" in data:
        return "amd64"
    if b"\0cpuinfo_arm64\0" in data:
        return "arm64"
    return None


def check_name(kind: str, value: str) -> str:
    """Refuse path components that would leave the archive or make an odd layout."""
    if not _NAME_RE.match(value) or value in (".", ".."):
        raise UsageError(f"{kind} {value!r}: not a usable archive folder name")
    return value


def tar_xz(name: str, data: bytes, mtime: int = 0) -> bytes:
    """A btfhub-style .tar.xz holding ``name`` (deterministic: fixed mtime, owner root)."""
    buf = io.BytesIO()
    # preset 0: a tenth of the default's time for 20% more bytes (1.2 MB for a 6.1 kernel)
    with tarfile.open(fileobj=buf, mode="w:xz", format=tarfile.GNU_FORMAT, preset=0) as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = mtime
        info.mode = 0o644
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_entry(root: Path | str, distro: str, version: str, arch_dir: str, release: str,
                btf: bytes, compress: bool = True, mtime: int = 0) -> Path:
    """Write one kernel's BTF into ``root`` (atomically); returns the file written."""
    for kind, value in (("ID", distro), ("VERSION_ID", version), ("arch", arch_dir),
                        ("release", release)):
        check_name(kind, value)
    d = Path(root) / distro / version / arch_dir
    os.makedirs(d, exist_ok=True)
    if compress:
        path = d / f"{release}{TAR_XZ}"
        atomic_write(path, tar_xz(f"{release}{PLAIN}", btf, mtime))
    else:
        path = d / f"{release}{PLAIN}"
        atomic_write(path, btf)
    return path
