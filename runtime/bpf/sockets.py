"""The socket enricher IG's network gadgets need: the map ``gadget_sockets`` filled with
the process owning each TCP and UDP socket, of this host's and containers' network
namespaces, and the BTF its value is relocated against.

A gadget including ``<gadget/sockets-map.h>`` reads ``struct gadget_socket_value`` with
CO-RE: the load needs a BTF that describes the layout the enricher fills (ig passes its
enricher's spec as an extra relocation target). :func:`btf_with_socket_value` writes the
kernel's BTF (or the btfgen one) plus that struct, for libbpf's ``btf_custom_path``.

IG's enricher follows sockets as they are made with kprobes (bind, connect, sendmsg),
which this project's kernels lack; this one reads them from ``/proc`` instead: every
process's socket fds (``/proc/PID/fd``), each network namespace's ``net/{tcp,udp}{,6}``
tables (local port and inode), the owner's ids, comm, parent and mount namespace. It
scans when the run starts, and then on demand: the SDK's lookups record the keys they
did not find in ``gadget_sockets_misses``, which the enricher reads every ``poll``
seconds (one syscall when nothing missed); a key it has not tried lately makes it scan
again, at most once per ``min_gap`` seconds, so the socket's later packets find their
owner (the ones before do not: a socket made and closed between two scans is not seen).
Keys a scan does not find (a remote port, a kernel socket) are not tried again for
``retry`` seconds. A full scan every ``sweep`` seconds removes the entries of closed
sockets (and gives a reused port its new owner). An object without the misses map (built
with other headers) is scanned every ``interval`` seconds, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.errors import RuntimeGadgetError

SOCKETS_MAP = "gadget_sockets"
MISSES_MAP = "gadget_sockets_misses"
VALUE_STRUCT = "gadget_socket_value"
AF_INET, AF_INET6 = 2, 10
IPPROTO_TCP, IPPROTO_UDP = 6, 17
TABLES = (("tcp", AF_INET, IPPROTO_TCP), ("tcp6", AF_INET6, IPPROTO_TCP),
          ("udp", AF_INET, IPPROTO_UDP), ("udp6", AF_INET6, IPPROTO_UDP))
KEY = struct.Struct("<IHBxHxx")  # netns, family, proto, port (struct gadget_socket_key)
# mntns, pid_tgid, uid_gid, task, ptask, sock, deletion_timestamp, ppid, ptid, ipv6only
VALUE = struct.Struct("<QQQ16s16sQQIIB7x")
#: (name, kind, byte offset, size): what the BTF says the enricher fills (VALUE's layout)
VALUE_FIELDS = (("mntns", "u64", 0, 8), ("pid_tgid", "u64", 8, 8), ("uid_gid", "u64", 16, 8),
                ("task", "char16", 24, 16), ("ptask", "char16", 40, 16), ("sock", "u64", 56, 8),
                ("deletion_timestamp", "u64", 64, 8), ("ppid", "u32", 72, 4),
                ("ptid", "u32", 76, 4), ("ipv6only", "char", 80, 1))


@contextlib.contextmanager
def btf_with_socket_value(base_path: str | None) -> Iterator[str]:
    """A temp BTF file: ``base_path``'s types (the kernel's when None) and
    ``struct gadget_socket_value`` as :data:`VALUE` lays it out."""
    lib = L.lib()
    btf = lib.btf__parse(base_path.encode(), None) if base_path else lib.btf__load_vmlinux_btf()
    if not btf:
        raise RuntimeGadgetError(f"socket enricher: cannot read the BTF of "
                                 f"{base_path or 'this kernel'} ({os.strerror(L.errno_now())})")
    try:
        u64 = lib.btf__add_int(btf, b"unsigned long long", 8, 0)
        u32 = lib.btf__add_int(btf, b"unsigned int", 4, 0)
        char = lib.btf__add_int(btf, b"char", 1, 1)  # BTF_INT_SIGNED
        char16 = lib.btf__add_array(btf, u32, char, 16)
        kinds = {"u64": u64, "u32": u32, "char": char, "char16": char16}
        if min(kinds.values()) < 0 or lib.btf__add_struct(btf, VALUE_STRUCT.encode(), VALUE.size) < 0:
            raise RuntimeGadgetError("socket enricher: cannot describe struct gadget_socket_value")
        for name, kind, off, _size in VALUE_FIELDS:
            if lib.btf__add_field(btf, name.encode(), kinds[kind], off * 8, 0) < 0:
                raise RuntimeGadgetError(f"socket enricher: cannot describe field {name}")
        size = ctypes.c_uint32()
        raw = lib.btf__raw_data(btf, ctypes.byref(size))
        data = ctypes.string_at(raw, size.value)
    finally:
        lib.btf__free(btf)
    fd, path = tempfile.mkstemp(prefix="gadget-sockets-", suffix=".btf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _ns_inode(pid: str, ns: str) -> int:
    link = os.readlink(f"/proc/{pid}/ns/{ns}")  # "net:[4026531840]"
    return int(link[link.index("[") + 1:-1])


def _owner(pid: str) -> tuple[bytes, int] | None:
    """The value of a socket opened by ``pid`` (its sockets keep the process's ids), and
    its network namespace; None when the process went away."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()
        comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        uid = gid = 0
        for line in open(f"/proc/{pid}/status", "rb"):
            if line.startswith(b"Uid:"):
                uid = int(line.split()[1])
            elif line.startswith(b"Gid:"):
                gid = int(line.split()[1])
                break
        pcomm = b""
        with contextlib.suppress(OSError):
            pcomm = open(f"/proc/{ppid}/comm", "rb").read().rstrip(b"\n")
        mntns, netns = _ns_inode(pid, "mnt"), _ns_inode(pid, "net")
    except (OSError, ValueError, IndexError):
        return None
    tgid = int(pid)
    value = VALUE.pack(mntns, tgid << 32 | tgid, gid << 32 | uid, comm[:15], pcomm[:15], 0, 0,
                       ppid, ppid, 0)
    return value, netns


def _socket_inodes(pid: str) -> set[int]:
    out = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    out.add(int(link[8:-1]))
    return out


def _ports(pid: str) -> dict[int, tuple[int, int, int]]:
    """Socket inode -> (family, proto, local port) of the TCP/UDP tables of ``pid``'s
    network namespace."""
    out = {}
    for table, family, proto in TABLES:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/net/{table}", "rb") as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) > 9:
                        out[int(cols[9])] = (family, proto, int(cols[1].rsplit(b":", 1)[1], 16))
    return out


def scan() -> dict[bytes, bytes]:
    """Every TCP/UDP socket of every network namespace a process is in: key -> value, as
    the map holds them."""
    tables: dict[int, dict[int, tuple[int, int, int]]] = {}
    out: dict[bytes, bytes] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        owner = _owner(pid)
        if owner is None:
            continue
        value, netns = owner
        if netns not in tables:
            tables[netns] = _ports(pid)
        for ino in inodes:
            hit = tables[netns].get(ino)
            if hit is not None and hit[2]:
                out[KEY.pack(netns, hit[0], hit[1], hit[2])] = value
    return out


class SocketEnricher:
    """Keeps the map ``map_fd`` (value size ``value_size``) equal to :func:`scan`: now,
    and from a thread until :meth:`close`, when ``misses_fd`` (the misses map) says a
    lookup found nothing, or every ``interval`` seconds without one."""

    def __init__(self, map_fd: int, value_size: int, interval: float = 1.0,
                 misses_fd: int | None = None, on_debug: Callable[[str], None] | None = None,
                 poll: float = 0.05, min_gap: float = 0.25, retry: float = 5.0,
                 sweep: float = 10.0) -> None:
        self.fd, self.value_size, self.interval = map_fd, value_size, interval
        self.misses_fd, self.on_debug = misses_fd, on_debug
        self.poll, self.min_gap, self.retry, self.sweep = poll, min_gap, retry, sweep
        self.scans = 0
        self._have: dict[bytes, bytes] = {}
        self._tried: dict[bytes, float] = {}  # missed key -> when a scan last failed it
        self._last = 0.0
        self._stop = threading.Event()
        self.refresh()
        loop = self._loop if misses_fd is None else self._on_demand
        self._thread = threading.Thread(target=loop, name="socket-enricher", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        now = scan()
        self.scans += 1
        self._last = time.monotonic()
        lib = L.lib()
        for key, value in now.items():
            if self._have.get(key) != value:
                v = value.ljust(self.value_size, b"\0")
                lib.bpf_map_update_elem(self.fd, key, v, 0)
        for key in self._have.keys() - now.keys():
            lib.bpf_map_delete_elem(self.fd, key)
        self._have = now

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):
                self.refresh()

    def missed(self) -> list[bytes]:
        """The keys lookups did not find since the last call (taken out of the map)."""
        assert self.misses_fd is not None
        lib = L.lib()
        key, nxt = ctypes.create_string_buffer(KEY.size), ctypes.create_string_buffer(KEY.size)
        out: list[bytes] = []
        rc = lib.bpf_map_get_next_key(self.misses_fd, None, nxt)
        while rc == 0 and len(out) < 4096:
            out.append(nxt.raw)
            ctypes.memmove(key, nxt, KEY.size)
            rc = lib.bpf_map_get_next_key(self.misses_fd, key, nxt)
        for k in out:
            lib.bpf_map_delete_elem(self.misses_fd, ctypes.create_string_buffer(k, KEY.size))
        return out

    def _on_demand(self) -> None:
        pending: set[bytes] = set()
        while not self._stop.wait(self.poll):
            with contextlib.suppress(OSError):
                t = time.monotonic()
                pending.update(k for k in self.missed()
                               if k not in self._have and t - self._tried.get(k, -1e9) > self.retry)
                sweep = t - self._last >= self.sweep
                if not sweep and (not pending or t - self._last < self.min_gap):
                    continue
                self.refresh()
                if pending and self.on_debug is not None:
                    found = len(pending & self._have.keys())
                    self.on_debug(f"socket enricher: scanned for {len(pending)} socket(s) "
                                  f"lookups missed, {found} found")
                for k in pending - self._have.keys():
                    self._tried[k] = self._last
                pending.clear()
                if len(self._tried) > 4096:
                    self._tried = {k: v for k, v in self._tried.items()
                                   if self._last - v <= self.retry}

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


__all__ = ["KEY", "MISSES_MAP", "SOCKETS_MAP", "VALUE", "SocketEnricher", "btf_with_socket_value", "scan"]
