"""Uprobe and USDT targets: ``uprobe/PATH:SYMBOL[+OFFSET]`` and
``usdt/PATH:PROVIDER:NAME`` sections, and library names.

IG gadgets name their targets either by path (``uprobe//usr/bin/bash:readline``,
``usdt//usr/bin/python3:python:gc__start``) or by a short library or program name
(``uprobe/libc:malloc``, ``usdt/libpython3.11:python:function__entry``). On this host a
short name is resolved through the dynamic linker's cache (``/etc/ld.so.cache``, glibc's
format, parsed here: :func:`parse_ld_cache`) first, then the usual library directories,
then ``PATH`` for executables.

Inside a container the same name is resolved in the container's own filesystem, seen
through ``/proc/<pid>/root`` of one of its processes (:func:`resolve_in_root`): its
``/etc/ld.so.cache`` (the same parser), then the same library directories, then the
usual bin directories. Symbolic links are followed relative to that root, never
out of it. A probe is attached for every process that maps the file (pid -1), so one
probe per distinct file is enough: :func:`file_identity` names the file the kernel will
probe (for a file on an overlay mount, the layer's file underneath, which every container
of one image shares).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from gadgetsmith.runtime.errors import NotInRoot, RuntimeGadgetError

UPROBE_KINDS = ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s")
USDT_KIND = "usdt"
#: sections whose programs are attached to a file (the host's, and each container's copy)
FILE_PROBE_KINDS = (*UPROBE_KINDS, USDT_KIND)
_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
             "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
             "/usr/local/lib")
_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_TARGET = re.compile(r"^(?P<path>.+):(?P<sym>[A-Za-z0-9_.@$]+)(?:\+(?P<off>0x[0-9a-fA-F]+|\d+))?$")
# provider and probe names are C identifiers in sys/sdt.h (a name's "__" stays as is)
_USDT_TARGET = re.compile(r"^(?P<path>[^:]+):(?P<provider>[A-Za-z0-9_.$-]+)"
                          r":(?P<name>[A-Za-z0-9_.$-]+)$")


class _FileTarget:
    target: str  # as written in the section: a path, or a library or program name

    def path(self) -> str:
        """The file on this host (see :func:`resolve_binary`)."""
        return resolve_binary(self.target)


@dataclass
class UprobeTarget(_FileTarget):
    retprobe: bool
    target: str
    symbol: str
    offset: int


@dataclass
class UsdtTarget(_FileTarget):
    """A USDT probe (``provider``:``name``, from sys/sdt.h's notes) in a file."""

    target: str
    provider: str
    name: str

    @property
    def probe(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_section(section: str) -> UprobeTarget | UsdtTarget:
    kind, _, rest = section.partition("/")
    if kind == USDT_KIND:
        m = _USDT_TARGET.match(rest)
        if not m:
            raise RuntimeGadgetError(
                f"section {section!r}: expected usdt/PATH:PROVIDER:NAME or "
                "usdt/LIBRARY:PROVIDER:NAME (e.g. usdt/libpython3.11:python:gc__start)")
        return UsdtTarget(m["path"], m["provider"], m["name"])
    if kind not in UPROBE_KINDS:
        raise ValueError(f"not a uprobe or usdt section: {section}")
    m = _TARGET.match(rest)
    if not m:
        raise RuntimeGadgetError(
            f"section {section!r}: expected {kind}/PATH:SYMBOL or {kind}/LIBRARY:SYMBOL "
            "(e.g. uprobe/libc:malloc)")
    return UprobeTarget(kind.startswith("uretprobe"), m["path"], m["sym"],
                        int(m["off"], 0) if m["off"] else 0)


def _lib_names(name: str) -> list[str]:
    base = name if name.startswith("lib") else f"lib{name}"
    return [name, base] if name != base else [name]


def _matches(soname: str, names: list[str]) -> bool:
    return any(soname == n or soname.startswith(f"{n}.so") for n in names)


def resolve_binary(target: str) -> str:
    """The real path of a uprobe or USDT target: a path, a library name (libc, libssl.so.3) or an
    executable name found in PATH."""
    if "/" in target:
        path = os.path.realpath(target)
        if not os.path.isfile(path):
            raise RuntimeGadgetError(f"target {target}: no such file")
        return path
    names = _lib_names(target)
    for soname, path in ld_cache(""):
        if _matches(soname, names) and os.path.isfile(path):
            return os.path.realpath(path)
    for d in _LIB_DIRS:
        try:
            entries = sorted(os.listdir(d))
        except OSError:
            continue
        for e in entries:
            if _matches(e, names) and os.path.isfile(os.path.join(d, e)):
                return os.path.realpath(os.path.join(d, e))
    exe = shutil.which(target)
    if exe:
        return os.path.realpath(exe)
    raise RuntimeGadgetError(
        f"target {target!r}: no library or executable of that name on this host "
        "(searched /etc/ld.so.cache, the library directories and PATH)")


# ----------------------------------------------------------------- inside a container
def _walk_in_root(root: str, path: str, max_links: int = 40) -> str:
    """``path`` resolved inside ``root`` with every symbolic link followed relative to that
    root (an absolute link target starts again at ``root``; ``..`` stops at it). Returns
    the resolved path as seen from inside (``/usr/lib/...``); NotInRoot when a component
    is missing or is not a directory."""
    todo = [c for c in path.split("/") if c]
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == ".":
            continue
        if comp == "..":
            if done:
                done.pop()
            continue
        inner = "/" + "/".join([*done, comp])
        try:
            st = os.lstat(root + inner)
        except OSError:
            raise NotInRoot(f"{path}: no such file") from None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > max_links:
                raise NotInRoot(f"{path}: too many levels of symbolic links")
            try:
                target = os.readlink(root + inner)
            except OSError:
                raise NotInRoot(f"{path}: unreadable symbolic link {inner}") from None
            if target.startswith("/"):
                done = []
            todo[:0] = [c for c in target.split("/") if c]
            continue
        if todo and not stat.S_ISDIR(st.st_mode):
            raise NotInRoot(f"{path}: {inner} is not a directory")
        done.append(comp)
    return "/" + "/".join(done)


def _typed_in_root(root: str, path: str, is_type: Callable[[int], bool]) -> str | None:
    """The resolved inside path of ``path`` when ``root`` has it and ``is_type(st_mode)``
    (``stat.S_ISREG``, ``stat.S_ISDIR``) holds for it."""
    try:
        resolved = _walk_in_root(root, path)
        return resolved if is_type(os.stat(root + resolved).st_mode) else None
    except (NotInRoot, OSError):
        return None


def _is_file_in_root(root: str, path: str) -> str | None:
    return _typed_in_root(root, path, stat.S_ISREG)


def _is_dir_in_root(root: str, path: str) -> str | None:
    return _typed_in_root(root, path, stat.S_ISDIR)


_OLD_MAGIC = b"ld.so-1.7.0\0"
_NEW_MAGIC = b"glibc-ld.so.cache1.1"
# glibc's "required" bits of an entry's flags: the ABI of the library
_ARCH_FLAGS = {"x86_64": 0x0300, "aarch64": 0x0A00}


def parse_ld_cache(data: bytes, machine: str | None = None) -> list[tuple[str, str]]:
    """(soname, path) pairs of a glibc ``ld.so.cache``, in the cache's order, for ELF
    libc6 libraries of ``machine``'s 64-bit ABI (default: this machine's). Understands the
    new format (glibc >= 2.32's default), the old one and the two together ("compat").
    An unreadable cache gives an empty list (the library directories are searched next)."""
    machine = machine or os.uname().machine
    want = _ARCH_FLAGS.get(machine)
    entries: list[tuple[int, str, str]] = []
    new_at = None
    if data.startswith(_NEW_MAGIC):
        new_at = 0
    elif data.startswith(_OLD_MAGIC) and len(data) >= 16:
        (nlibs,) = struct.unpack_from("<I", data, 12)
        strings = 16 + nlibs * 12
        if strings <= len(data):
            # the new format may follow the old entries, 8-byte aligned
            after = (strings + 7) & ~7
            if data[after:after + len(_NEW_MAGIC)] == _NEW_MAGIC:
                new_at = after
            else:
                for i in range(nlibs):
                    flags, key, value = struct.unpack_from("<iII", data, 16 + i * 12)
                    entries.append((flags, _cstr(data, strings + key),
                                    _cstr(data, strings + value)))
    if new_at is not None and len(data) >= new_at + 48:
        endian = data[new_at + 28]
        order = ">" if endian == 3 else "<"
        (nlibs,) = struct.unpack_from(order + "I", data, new_at + 20)
        base = new_at + 48
        if base + nlibs * 24 <= len(data):
            for i in range(nlibs):
                flags, key, value = struct.unpack_from(order + "iII", data, base + i * 24)
                entries.append((flags, _cstr(data, new_at + key), _cstr(data, new_at + value)))
    out = []
    for flags, key, value in entries:
        if flags & 0xFF != 0x03 or not key or not value.startswith("/"):
            continue  # not an ELF libc6 library
        if want is not None and flags & 0xFF00 != want:
            continue
        out.append((key, value))
    return out


def _cstr(data: bytes, off: int) -> str:
    if off < 0 or off >= len(data):
        return ""
    end = data.find(b"\0", off)
    return data[off:end if end >= 0 else len(data)].decode("utf-8", "replace")


def ld_cache(root: str) -> list[tuple[str, str]]:
    """(soname, path) pairs of the ``/etc/ld.so.cache`` of a root filesystem (``""``: this
    host's; a container's as ``/proc/<pid>/root``), paths as seen inside it; empty when
    there is none or it cannot be read."""
    cache = _is_file_in_root(root, "/etc/ld.so.cache")
    if cache is None:
        return []
    try:
        with open(root + cache, "rb") as f:
            return parse_ld_cache(f.read(64 << 20))
    except OSError:
        return []


def resolve_in_root(root: str, target: str) -> str:
    """The file a uprobe target names inside another root filesystem (a container's, as
    ``/proc/<pid>/root``), as a path inside that root with its links resolved there:
    an absolute path as is; a library name through the root's ld.so.cache, then the
    library directories; an executable name through the usual bin directories.
    NotInRoot when there is none."""
    if "/" in target:
        found = _is_file_in_root(root, target)
        if found is None:
            raise NotInRoot(f"target {target}: no such file")
        return found
    names = _lib_names(target)
    for soname, path in ld_cache(root):
        if _matches(soname, names):
            found = _is_file_in_root(root, path)
            if found is not None:
                return found
    for d in _LIB_DIRS:
        resolved = _is_dir_in_root(root, d)
        if resolved is None:
            continue
        try:
            entries = sorted(os.listdir(root + resolved))
        except OSError:
            continue
        for e in entries:
            if _matches(e, names):
                found = _is_file_in_root(root, f"{resolved}/{e}")
                if found is not None:
                    return found
    for d in _BIN_DIRS:
        found = _is_file_in_root(root, f"{d}/{target}")
        if found is not None:
            return found
    raise NotInRoot(f"target {target!r}: no library or executable of that name "
                    "(searched its ld.so.cache, the library and bin directories)")


# ------------------------------------------------------------------ file identity
def _unescape_mountinfo(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)


def _mounts(pid: int | str) -> list[tuple[int, str, str, str, str]]:
    """(st_dev, root within the fs, mount point, fs type, super options) of each mount
    in /proc/<pid>/mountinfo, in its order."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if not sep or len(fields) < 5 or len(rfields) < 3:
            continue
        major, _, minor = fields[2].partition(":")
        try:
            dev = os.makedev(int(major), int(minor))
        except ValueError:
            continue
        out.append((dev, _unescape_mountinfo(fields[3]), _unescape_mountinfo(fields[4]),
                    rfields[0], rfields[2]))
    return out


def _overlay_layers(options: str) -> list[str]:
    r"""upperdir then the lowerdirs of overlayfs mount options (``\:`` is a literal
    colon in a lowerdir; ``::`` separates data-only layers)."""
    upper, lowers = "", []
    for opt in re.split(r"(?<!\\),", options):
        key, _, value = opt.partition("=")
        if key == "upperdir":
            upper = value
        elif key == "lowerdir":
            lowers += [p.replace("\\:", ":") for p in re.split(r"(?<!\\):", value) if p]
        elif key == "lowerdir+":
            lowers.append(value)
    return [_unescape_mountinfo(p) for p in ([upper] if upper else []) + lowers]


def file_identity(pid: int | str, inner: str) -> tuple[int, int]:
    """(st_dev, st_ino) of the file a uprobe on ``/proc/<pid>/root<inner>`` is placed on
    (``inner`` resolved, without links). The kernel probes the real inode: on an overlay
    mount, the topmost layer's file, so two containers of one image (two overlay mounts,
    two st_dev) share it. Layers named by a relative path cannot be looked at: the
    overlay's own (st_dev, st_ino) is used then."""
    st = os.stat(f"/proc/{pid}/root{inner}")
    best = None
    for dev, fsroot, point, fstype, options in _mounts(pid):
        if dev != st.st_dev:
            continue
        prefix = point.rstrip("/")
        if inner == point or inner.startswith(prefix + "/"):
            if best is None or len(point) >= len(best[2]):
                best = (dev, fsroot, point, fstype, options)
    if best is None or best[3] != "overlay":
        return (st.st_dev, st.st_ino)
    _dev, fsroot, point, _t, options = best
    rel = fsroot.rstrip("/") + "/" + inner[len(point.rstrip("/")):].lstrip("/")
    for layer in _overlay_layers(options):
        if not layer.startswith("/"):
            break
        try:
            lst = os.lstat(layer + rel)
        except OSError:
            continue
        if stat.S_ISREG(lst.st_mode):
            return (lst.st_dev, lst.st_ino)
        break  # a whiteout or another kind of file hides the layers below
    return (st.st_dev, st.st_ino)


__all__ = ["FILE_PROBE_KINDS", "UPROBE_KINDS", "USDT_KIND", "NotInRoot", "UprobeTarget",
           "UsdtTarget", "file_identity", "ld_cache", "parse_ld_cache", "parse_section", "resolve_binary",
           "resolve_in_root"]
