"""Kernel BTF from distribution kernel packages (``gadget btf import``).

A Debian or Ubuntu ``linux-image-*`` package carries the kernel as ``boot/vmlinuz-RELEASE``;
its BTF is in there:

- amd64: a bzImage. Its payload (at ``(setup_sects + 1) * 512 + payload_offset``, setup
  header fields at 0x1f1 and 0x248) is the ELF vmlinux compressed with the kernel config's
  ``CONFIG_KERNEL_*`` (lz4 for Debian's 6.1, zstd for 6.12, also gzip/xz/lzma/bzip2); the
  BTF is its ``.BTF`` section.
- arm64: an uncompressed ``Image`` (EFI "MZ" header) or a gzipped one; the BTF blob sits in
  it as is and is found by its header (magic, version 1, string section right after types).

The distribution and its version come from the package's changelog (its first entry
names the suite, ``bookworm-security`` -> debian 12), the architecture from its control
file, the release from the vmlinuz file name. Other inputs (a raw BTF file such as
``/sys/kernel/btf/vmlinux``, or an ELF vmlinux) are imported with ``--os`` and
``--release`` (defaults: this machine's, for this machine's own BTF).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import platform
import shutil
import struct
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from gadgetsmith.toolchain.btfgen import archive
from gadgetsmith.toolchain.errors import GadgetError, UsageError

#: suite codename -> (os-release ID, VERSION_ID)
CODENAMES = {
    "jessie": ("debian", "8"), "stretch": ("debian", "9"), "buster": ("debian", "10"),
    "bullseye": ("debian", "11"), "bookworm": ("debian", "12"), "trixie": ("debian", "13"),
    "forky": ("debian", "14"), "duke": ("debian", "15"),
    "xenial": ("ubuntu", "16.04"), "bionic": ("ubuntu", "18.04"), "focal": ("ubuntu", "20.04"),
    "groovy": ("ubuntu", "20.10"), "hirsute": ("ubuntu", "21.04"), "impish": ("ubuntu", "21.10"),
    "jammy": ("ubuntu", "22.04"), "kinetic": ("ubuntu", "22.10"), "lunar": ("ubuntu", "23.04"),
    "mantic": ("ubuntu", "23.10"), "noble": ("ubuntu", "24.04"), "oracular": ("ubuntu", "24.10"),
    "plucky": ("ubuntu", "25.04"), "questing": ("ubuntu", "25.10"),
}
#: dpkg architecture -> gadget architecture
DPKG_ARCH = {"amd64": "amd64", "arm64": "arm64"}
MAX_KERNEL = 512 << 20  # decompressed vmlinux bigger than this is refused


@dataclass
class Imported:
    source: Path
    key: str  # ID/VERSION_ID/ARCH/RELEASE
    path: Path  # the archive file written
    btf_size: int
    package: str | None = None
    package_version: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"source": str(self.source), "kernel": self.key, "path": str(self.path),
                "btfSize": self.btf_size, "package": self.package,
                "packageVersion": self.package_version}


@dataclass
class KernelPackage:
    name: str
    version: str
    arch: str  # dpkg architecture
    release: str
    vmlinuz: bytes
    suite: str | None  # first changelog entry's distribution, e.g. bookworm-security


# -- .deb reading ----------------------------------------------------------------------
def _ar_members(f: BinaryIO, path: Path) -> Iterator[tuple[str, int]]:
    """(name, size) of each member of an ar archive; ``f`` is left at the member's data."""
    if f.read(8) != b"!<arch>\n":
        raise UsageError(f"{path}: not a Debian package (no ar header)")
    while True:
        hdr = f.read(60)
        if not hdr:
            return
        if len(hdr) < 60 or hdr[58:60] != b"`\n":
            raise UsageError(f"{path}: corrupt Debian package (bad ar member header)")
        name = hdr[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(hdr[48:58].decode().strip())
        except ValueError:
            raise UsageError(f"{path}: corrupt Debian package (bad ar member size)") from None
        start = f.tell()
        yield name, size
        f.seek(start + size + (size & 1))


def _open_member_tar(f: BinaryIO, name: str, size: int, path: Path):
    """A streaming tarfile over an ar member ``control.tar.*``/``data.tar.*``."""
    raw = cast(BinaryIO, _Limited(f, size))  # read() and readable() are all tarfile and the decompressors use
    if name.endswith(".tar.xz"):
        return tarfile.open(fileobj=lzma.open(raw), mode="r|"), None
    if name.endswith(".tar.gz"):
        return tarfile.open(fileobj=gzip.GzipFile(fileobj=raw), mode="r|"), None
    if name.endswith(".tar.bz2"):
        return tarfile.open(fileobj=bz2.BZ2File(raw), mode="r|"), None
    if name.endswith(".tar"):
        return tarfile.open(fileobj=raw, mode="r|"), None
    if name.endswith(".tar.zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise UsageError(f"{path}: {name} is zstd-compressed: install zstd (apt-get install zstd)")
        proc = subprocess.Popen([zstd, "-dc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)

        def feed() -> None:
            try:
                while chunk := raw.read(1 << 20):
                    proc.stdin.write(chunk)  # type: ignore[union-attr]
            except (BrokenPipeError, OSError):
                pass
            finally:
                proc.stdin.close()  # type: ignore[union-attr]

        t = threading.Thread(target=feed, daemon=True)
        t.start()
        return tarfile.open(fileobj=proc.stdout, mode="r|"), proc
    raise UsageError(f"{path}: unsupported package member {name}")


class _Limited:
    """At most ``n`` bytes of ``f`` (one ar member), as a file object."""

    def __init__(self, f: BinaryIO, n: int) -> None:
        self.f, self.left = f, n

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n < 0 or n > self.left:
            n = self.left
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def readable(self) -> bool:
        return True


def _control_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    return fields


def read_package(path: Path) -> KernelPackage:
    """The kernel image, release, architecture and suite of a ``linux-image-*`` .deb."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UsageError(f"{path}: cannot read it ({e.strerror})") from None
    control: dict[str, str] = {}
    vmlinuz: bytes | None = None
    vmlinuz_name = ""
    changelog: bytes | None = None
    try:
        with f:
            for name, size in _ar_members(f, path):
                if not (name.startswith("control.tar") or name.startswith("data.tar")):
                    continue
                tf, proc = _open_member_tar(f, name, size, path)
                try:
                    for m in tf:
                        n = m.name.removeprefix("./")
                        if name.startswith("control.tar"):
                            if n == "control" and m.isfile():
                                control = _control_fields(_read_member(tf, m, path).decode(
                                    "utf-8", "replace"))
                            continue
                        if n.startswith("boot/vmlinuz-") or n.startswith("boot/vmlinux-"):
                            if m.isfile():
                                vmlinuz = _read_member(tf, m, path)
                                vmlinuz_name = n.split("/", 1)[1]
                        elif (n.startswith("usr/share/doc/") and m.isfile()
                              and n.rsplit("/", 1)[-1] in ("changelog.Debian.gz", "changelog.gz")
                              and changelog is None):
                            changelog = _read_member(tf, m, path)
                finally:
                    tf.close()
                    if proc is not None:
                        proc.kill()
                        proc.wait()
    except (tarfile.TarError, lzma.LZMAError, EOFError, zlib.error, OSError) as e:
        raise UsageError(f"{path}: corrupt Debian package ({e})") from None
    if not control:
        raise UsageError(f"{path}: not a Debian package (no control file)")
    pkg = control.get("Package", "")
    if vmlinuz is None:
        raise UsageError(f"{path}: package {pkg or '?'} holds no boot/vmlinuz-* (give a "
                         "linux-image-* package, not a meta-package or linux-headers)")
    release = vmlinuz_name.split("-", 1)[1]
    return KernelPackage(pkg, control.get("Version", ""), control.get("Architecture", ""),
                         release, vmlinuz, _suite(changelog))


def _read_member(tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> bytes:
    if m.size > MAX_KERNEL:
        raise UsageError(f"{path}: {m.name} is {m.size} bytes, too big")
    fh = tf.extractfile(m)
    assert fh is not None
    return fh.read()


def _suite(changelog: bytes | None) -> str | None:
    """``bookworm-security`` from a changelog's first line ``pkg (ver) bookworm-security; ..``."""
    if not changelog:
        return None
    try:
        first = gzip.decompress(changelog).split(b"\n", 1)[0].decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):
        return None
    if ")" not in first:
        return None
    dists = first.split(")", 1)[1].split(";", 1)[0].split()
    return dists[0] if dists else None


def os_of_suite(suite: str | None) -> tuple[str, str] | None:
    if not suite:
        return None
    return CODENAMES.get(suite.split("-", 1)[0])


# -- BTF from a kernel image -----------------------------------------------------------
def btf_from_kernel_image(data: bytes, where: Path | str) -> bytes:
    """The kernel BTF inside a vmlinuz (bzImage, arm64 Image, gzipped Image) or vmlinux."""
    for _ in range(3):  # bzImage -> vmlinux; Image.gz -> Image
        if data[:4] == b"\x7fELF":
            btf = elf_section(data, ".BTF", where)
            if btf is None:
                raise UsageError(f"{where}: the kernel has no .BTF section "
                                 "(built without CONFIG_DEBUG_INFO_BTF)")
            return btf
        if len(data) > 0x250 and data[0x202:0x206] == b"HdrS":
            data = _bzimage_payload(data, where)
            continue
        if data[:2] == b"\x1f\x8b":
            data = _decompress(data, where, "gzip")
            continue
        break
    btf = scan_btf(data)
    if btf is None:
        raise UsageError(f"{where}: no BTF found in the kernel image "
                         "(built without CONFIG_DEBUG_INFO_BTF?)")
    return btf


_MAGICS = (
    (b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x5d\x00\x00", "lzma"),
    (b"BZh", "bzip2"), (b"\x02\x21\x4c\x18", "lz4"), (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x89LZO", "lzo"),
)


def _bzimage_payload(data: bytes, where: Path | str) -> bytes:
    setup_sects = data[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = data[start:start + payload_length]
    if len(payload) != payload_length or payload_length < 8:
        raise UsageError(f"{where}: truncated bzImage (payload beyond the end of the file)")
    for magic, kind in _MAGICS:
        if payload.startswith(magic):
            # the kernel appends the decompressed size (4 bytes) to the compressed stream
            return _decompress(payload[:-4], where, kind)
    raise UsageError(f"{where}: unknown bzImage compression (payload starts {payload[:6].hex()})")


def _decompress(data: bytes, where: Path | str, kind: str) -> bytes:
    try:
        if kind == "gzip":
            d = zlib.decompressobj(wbits=31)
            out = d.decompress(data, MAX_KERNEL)
        elif kind in ("xz", "lzma"):
            dl = lzma.LZMADecompressor(lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)
            out = dl.decompress(data, MAX_KERNEL)
        elif kind == "bzip2":
            out = bz2.BZ2Decompressor().decompress(data)
        else:
            tool = {"lz4": "lz4", "zstd": "zstd", "lzo": "lzop"}[kind]
            exe = shutil.which(tool)
            if exe is None:
                raise UsageError(f"{where}: the kernel is {kind}-compressed: install {tool} "
                                 f"(apt-get install {tool})")
            proc = subprocess.run([exe, "-dc"], input=data, capture_output=True)
            if proc.returncode != 0 or not proc.stdout:
                msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
                raise UsageError(f"{where}: {tool} could not decompress the kernel "
                                 f"({msg[-1] if msg else 'exit ' + str(proc.returncode)})")
            out = proc.stdout
    except (lzma.LZMAError, zlib.error, OSError, EOFError) as e:
        raise UsageError(f"{where}: corrupt {kind}-compressed kernel ({e})") from None
    return out


def elf_section(data: bytes, name: str, where: Path | str) -> bytes | None:
    """One section of a 64-bit little-endian ELF file, without copying the others."""
    if data[4:6] != b"\x02\x01":
        raise UsageError(f"{where}: only 64-bit little-endian kernels are supported")
    try:
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

        def hdr(i: int) -> tuple[int, int, int, int]:
            n, typ, _fl, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
            return n, typ, off, size

        _n, _t, stroff, _s = hdr(shstrndx)
        want = name.encode()
        for i in range(shnum):
            n, typ, off, size = hdr(i)
            end = data.index(b"\0", stroff + n)
            if data[stroff + n:end] == want and typ != 8:
                return data[off:off + size]
    except (struct.error, ValueError, IndexError):
        raise UsageError(f"{where}: corrupt ELF kernel image") from None
    return None


_BTF_HEAD = b"\x9f\xeb\x01\x00\x18\x00\x00\x00"


def scan_btf(data: bytes) -> bytes | None:
    """The largest well-formed BTF blob in ``data`` (header: magic, version 1, 24 bytes,
    types at 0, strings right after them, the string section starting with NUL)."""
    best: tuple[int, int] | None = None
    pos = data.find(_BTF_HEAD)
    while pos >= 0:
        if pos + 24 <= len(data):
            type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, pos + 8)
            total = 24 + str_off + str_len
            if (type_off == 0 and str_off == type_len and str_len and type_len
                    and pos + total <= len(data) and data[pos + 24 + str_off] == 0
                    and (best is None or total > best[1])):
                best = (pos, total)
        pos = data.find(_BTF_HEAD, pos + 1)
    if best is None:
        return None
    return data[best[0]:best[0] + best[1]]


# -- this machine ----------------------------------------------------------------------
def host_os_release(path: str = "/etc/os-release") -> tuple[str, str]:
    """(ID, VERSION_ID) of /etc/os-release, quotes stripped (as ig's runtime reads them)."""
    vals: dict[str, str] = {}
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            vals[k.strip()] = v.strip().strip("\"'")
    return vals.get("ID", ""), vals.get("VERSION_ID", "")


# -- import ----------------------------------------------------------------------------
def parse_os(value: str) -> tuple[str, str]:
    parts = value.split("/")
    if len(parts) != 2 or not all(parts):
        raise UsageError(f"--os {value!r}: give ID/VERSION_ID as in /etc/os-release, e.g. debian/12")
    return archive.check_name("ID", parts[0]), archive.check_name("VERSION_ID", parts[1])


def import_file(src: Path | str, dest: Path | str, os_id: tuple[str, str] | None = None,
                release: str | None = None, compress: bool = True) -> Imported:
    """Put the kernel BTF of ``src`` (a kernel package, raw BTF or vmlinux) into ``dest``."""
    src = Path(src)
    if src.is_dir():
        raise UsageError(f"{src}: a directory: give kernel packages or BTF files")
    if not src.exists():
        raise UsageError(f"{src}: no such file")
    with open(src, "rb") as f:
        head = f.read(8)
    package = package_version = None
    rel: str | None
    if head == b"!<arch>\n":
        pkg = read_package(src)
        arch = DPKG_ARCH.get(pkg.arch)
        if arch is None:
            raise UsageError(f"{src}: architecture {pkg.arch!r} is not supported (amd64, arm64)")
        found = os_id or os_of_suite(pkg.suite)
        if found is None:
            raise UsageError(
                f"{src}: cannot tell the distribution release from the package (suite "
                f"{pkg.suite or 'unknown'}): give it with --os ID/VERSION_ID, e.g. --os debian/12")
        btf = btf_from_kernel_image(pkg.vmlinuz, f"{src}: boot/vmlinuz-{pkg.release}")
        rel = release or pkg.release
        package, package_version = pkg.name, pkg.version
    else:
        data = src.read_bytes()
        btf = data if data[:2] == b"\x9f\xeb" else btf_from_kernel_image(data, src)
        archive.check_btf(btf, src)
        found_arch = archive.btf_arch(btf)
        if found_arch is None:
            raise UsageError(f"{src}: cannot tell the kernel's architecture from its BTF")
        arch = found_arch
        this_host = os.path.realpath(src) == "/sys/kernel/btf/vmlinux"
        found = os_id or (host_os_release() if this_host else None)
        if not found or not all(found):
            raise UsageError(f"{src}: give the distribution with --os ID/VERSION_ID, e.g. --os debian/12")
        rel = release or (platform.release() if this_host else None)
        if not rel:
            raise UsageError(f"{src}: give the kernel release (uname -r) with --release")
    archive.check_btf(btf, src)
    got = archive.btf_arch(btf)
    if got is not None and got != arch:
        raise UsageError(f"{src}: the package says {arch} but its kernel BTF is {got}")
    arch_dir = archive.BTFHUB_ARCH[arch]
    try:
        path = archive.write_entry(dest, found[0], found[1], arch_dir, rel, btf, compress)
    except OSError as e:
        raise GadgetError(f"{dest}: cannot write into the archive ({e.strerror})") from None
    return Imported(src, f"{found[0]}/{found[1]}/{arch_dir}/{rel}", path, len(btf),
                    package, package_version)


def import_files(sources: list[Path], dest: Path | str, os_id: tuple[str, str] | None = None,
                 release: str | None = None, compress: bool = True, jobs: int | None = None,
                 progress=None) -> list[Imported]:
    """:func:`import_file` for each source, several at a time (decompression runs outside
    the GIL); results in the order given. The first failure is raised once the others
    that already started have finished (each writes its own file atomically)."""
    if release is not None and len(sources) > 1:
        raise UsageError("--release names one kernel: give one file with it")
    if not sources:
        return []
    jobs = max(1, min(jobs or (os.cpu_count() or 1), len(sources)))
    results: list[Imported | None] = [None] * len(sources)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="btf-import") as pool:
        futs = [pool.submit(import_file, s, dest, os_id, release, compress) for s in sources]
        first_error: BaseException | None = None
        for i, f in enumerate(futs):
            try:
                results[i] = f.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others
                if first_error is None:
                    first_error = e
                    for other in futs:
                        other.cancel()
                continue
            if progress is not None:
                progress(i + 1, len(sources), results[i])
    if first_error is not None:
        raise first_error
    return [r for r in results if r is not None]
