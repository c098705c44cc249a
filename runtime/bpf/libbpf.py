"""libbpf.so.1 through ctypes. Every foreign call of the runtime goes through this module,
and every return value is checked: failures raise :class:`LibbpfError` with the errno
name, libbpf's message and whatever libbpf logged while failing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import threading
from collections.abc import Callable, Iterator
from typing import Any

from gadgetsmith.runtime.errors import LibbpfError

c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_char_p = ctypes.c_char_p
c_size_t = ctypes.c_size_t
c_uint32 = ctypes.c_uint32


class UprobeOpts(ctypes.Structure):
    """struct bpf_uprobe_opts as of libbpf 1.1 (sz tells newer libbpfs what we know)."""

    _fields_ = [
        ("sz", c_size_t),
        ("ref_ctr_offset", c_size_t),
        ("bpf_cookie", ctypes.c_uint64),
        ("retprobe", ctypes.c_bool),
        ("func_name", c_char_p),
    ]


class ObjectOpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts up to kernel_log_level (libbpf 1.0+; sz says so)."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),  # removed field, kept as padding
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


class TcHook(ctypes.Structure):
    """struct bpf_tc_hook (libbpf 0.4+)."""

    _fields_ = [("sz", c_size_t), ("ifindex", c_int), ("attach_point", c_int),
                ("parent", c_uint32), ("_pad", c_uint32)]


class TcOpts(ctypes.Structure):
    """struct bpf_tc_opts (libbpf 0.4+)."""

    _fields_ = [("sz", c_size_t), ("prog_fd", c_int), ("flags", c_uint32),
                ("prog_id", c_uint32), ("handle", c_uint32), ("priority", c_uint32),
                ("_pad", c_uint32)]


TC_INGRESS = 1
TC_EGRESS = 2


_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
_libc.vsnprintf.restype = c_int

PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
SAMPLE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
PERF_SAMPLE_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_void_p, c_uint32)
PERF_LOST_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, ctypes.c_uint64)

PROG_TYPE_SOCKET_FILTER = 1
PROG_TYPE_SCHED_CLS = 3
PROG_TYPE_PERF_EVENT = 7
MAP_TYPE_PERCPU_ARRAY = 6
MAP_TYPE_ARRAY_OF_MAPS = 12
MAP_TYPE_HASH_OF_MAPS = 13
MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27

_log_lock = threading.Lock()
_log_lines: list[str] = []


def _printer(level: int, fmt: bytes, ap: int) -> int:
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, ap)
    text = buf.value.decode("utf-8", "replace")
    with _log_lock:
        _log_lines.append(text)
        if len(_log_lines) > 2000:
            del _log_lines[:1000]
    return 0


_printer_ref = PRINT_FN(_printer)


def take_log() -> str:
    """libbpf messages (including verifier output) since the last call."""
    with _log_lock:
        text = "".join(_log_lines)
        _log_lines.clear()
    return text


def _sig(name: str, restype: Any, argtypes: list[Any]) -> None:
    fn = getattr(lib(), name)
    fn.restype = restype
    fn.argtypes = argtypes


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            _lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        except OSError:
            # find_library runs `ldconfig -p` (a process, ~30 ms): only when dlopen failed
            path = ctypes.util.find_library("bpf") or "libbpf.so.1"
            try:
                _lib = ctypes.CDLL(path, use_errno=True)
            except OSError as e:
                raise LibbpfError(
                    "libbpf.so.1 not found (apt-get install libbpf1)", _errno.ENOENT
                ) from e
        _declare()
        _lib.libbpf_set_print(_printer_ref)
    return _lib


def _declare() -> None:
    """Every libbpf function the runtime calls, with its C signature."""
    _declare_object_api()
    _declare_fd_api()


def _declare_object_api() -> None:
    """libbpf's object, map, program and link functions."""
    _sig("libbpf_set_print", c_void_p, [PRINT_FN])
    _sig("bpf_object__open_mem", c_void_p, [c_void_p, c_size_t, c_void_p])
    _sig("bpf_object__load", c_int, [c_void_p])
    _sig("bpf_object__close", None, [c_void_p])
    _sig("bpf_object__next_map", c_void_p, [c_void_p, c_void_p])
    _sig("bpf_object__next_program", c_void_p, [c_void_p, c_void_p])
    _sig("bpf_map__name", c_char_p, [c_void_p])
    _sig("bpf_map__type", c_int, [c_void_p])
    _sig("bpf_map__fd", c_int, [c_void_p])
    _sig("bpf_map__key_size", c_uint32, [c_void_p])
    _sig("bpf_map__value_size", c_uint32, [c_void_p])
    _sig("bpf_map__max_entries", c_uint32, [c_void_p])
    _sig("bpf_map__set_max_entries", c_int, [c_void_p, c_uint32])
    _sig("bpf_map__inner_map", c_void_p, [c_void_p])
    _sig("bpf_map__set_inner_map_fd", c_int, [c_void_p, c_int])
    _sig("bpf_map__initial_value", c_void_p, [c_void_p, ctypes.POINTER(c_size_t)])
    _sig("bpf_map__set_initial_value", c_int, [c_void_p, c_void_p, c_size_t])
    _sig("bpf_map__reuse_fd", c_int, [c_void_p, c_int])
    _sig("bpf_program__name", c_char_p, [c_void_p])
    _sig("bpf_program__section_name", c_char_p, [c_void_p])
    _sig("bpf_program__fd", c_int, [c_void_p])
    _sig("bpf_program__attach", c_void_p, [c_void_p])
    _sig("bpf_program__attach_perf_event", c_void_p, [c_void_p, c_int])
    _sig("bpf_program__attach_kprobe", c_void_p, [c_void_p, ctypes.c_bool, c_char_p])
    _sig("bpf_program__attach_tracepoint", c_void_p, [c_void_p, c_char_p, c_char_p])
    _sig("bpf_program__attach_raw_tracepoint", c_void_p, [c_void_p, c_char_p])
    _sig("bpf_program__type", c_int, [c_void_p])
    _sig("bpf_program__set_type", c_int, [c_void_p, c_int])
    _sig("bpf_program__attach_uprobe_opts", c_void_p,
         [c_void_p, c_int, c_char_p, c_size_t, ctypes.POINTER(UprobeOpts)])
    _sig("bpf_link__fd", c_int, [c_void_p])
    _sig("bpf_link__destroy", c_int, [c_void_p])


def _declare_fd_api() -> None:
    """libbpf's functions on file descriptors: iterators, ring and perf buffers, map and
    program syscalls, BTF building, TC hooks, USDT."""
    _sig("bpf_iter_create", c_int, [c_int])
    _sig("ring_buffer__new", c_void_p, [c_int, SAMPLE_FN, c_void_p, c_void_p])
    _sig("ring_buffer__poll", c_int, [c_void_p, c_int])
    _sig("ring_buffer__free", None, [c_void_p])
    _sig("ring_buffer__epoll_fd", c_int, [c_void_p])
    _sig("perf_buffer__new", c_void_p,
         [c_int, c_size_t, PERF_SAMPLE_FN, PERF_LOST_FN, c_void_p, c_void_p])
    _sig("perf_buffer__poll", c_int, [c_void_p, c_int])
    _sig("perf_buffer__free", None, [c_void_p])
    _sig("perf_buffer__epoll_fd", c_int, [c_void_p])
    _sig("libbpf_num_possible_cpus", c_int, [])
    _sig("bpf_map_lookup_elem", c_int, [c_int, c_void_p, c_void_p])
    _sig("bpf_map_update_elem", c_int, [c_int, c_void_p, c_void_p, ctypes.c_uint64])
    _sig("bpf_map_delete_elem", c_int, [c_int, c_void_p])
    _sig("bpf_map_get_next_key", c_int, [c_int, c_void_p, c_void_p])
    _sig("bpf_obj_get_info_by_fd", c_int, [c_int, c_void_p, ctypes.POINTER(c_uint32)])
    _sig("bpf_map_create", c_int, [c_int, c_char_p, c_uint32, c_uint32, c_uint32, c_void_p])
    _sig("bpf_map_get_fd_by_id", c_int, [c_uint32])
    _sig("bpf_prog_load", c_int, [c_int, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p])
    _sig("btf__load_vmlinux_btf", c_void_p, [])
    _sig("btf__parse", c_void_p, [c_char_p, c_void_p])
    _sig("btf__free", None, [c_void_p])
    _sig("btf__add_int", c_int, [c_void_p, c_char_p, c_size_t, c_int])
    _sig("btf__add_array", c_int, [c_void_p, c_int, c_int, c_uint32])
    _sig("btf__add_struct", c_int, [c_void_p, c_char_p, c_uint32])
    _sig("btf__add_field", c_int, [c_void_p, c_char_p, c_int, c_uint32, c_uint32])
    _sig("btf__raw_data", c_void_p, [c_void_p, ctypes.POINTER(c_uint32)])
    _sig("bpf_tc_hook_create", c_int, [ctypes.POINTER(TcHook)])
    _sig("bpf_tc_hook_destroy", c_int, [ctypes.POINTER(TcHook)])
    _sig("bpf_tc_attach", c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)])
    _sig("bpf_tc_detach", c_int, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)])
    if hasattr(_lib, "bpf_program__attach_usdt"):  # libbpf 0.8 or later
        _sig("bpf_program__attach_usdt", c_void_p,
             [c_void_p, c_int, c_char_p, c_char_p, c_char_p, c_void_p])


def version() -> str:
    """The loaded libbpf's version, e.g. ``1.1`` (libbpf_major_version/minor: libbpf 0.6+)."""
    lib_ = lib()
    if not hasattr(lib_, "libbpf_major_version"):
        return "older than 0.6"
    lib_.libbpf_major_version.restype = c_uint32
    lib_.libbpf_minor_version.restype = c_uint32
    return f"{lib_.libbpf_major_version()}.{lib_.libbpf_minor_version()}"


def errno_now() -> int:
    """The errno of the last failed libbpf call (EINVAL when it left none)."""
    return ctypes.get_errno() or _errno.EINVAL


def check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        raise LibbpfError(what, errno_now(), take_log())
    return ptr


def check_int(rc: int, what: str) -> int:
    if rc < 0:
        raise LibbpfError(what, -rc if rc != -1 else errno_now(), take_log())
    return rc


# -- thin typed wrappers ---------------------------------------------------------------
def open_mem(data: bytes, btf_custom_path: str | None = None,
             log_buf: tuple[int, int] | None = None) -> tuple[int, ctypes.Array[ctypes.c_char]]:
    """Open an object from memory. ``btf_custom_path``: a BTF file libbpf uses instead of
    the kernel's for CO-RE relocations (a btfgen bundle's entry for kernels without BTF).
    ``log_buf``: (address, size) of a buffer that gets the verifier's log of a program
    the kernel rejects (libbpf loads it again with the log on; see runtime/bpf/verifier.py)."""
    buf = ctypes.create_string_buffer(data, len(data))
    opts = ObjectOpenOpts(sz=ctypes.sizeof(ObjectOpenOpts))
    if btf_custom_path:
        opts.btf_custom_path = btf_custom_path.encode()
    if log_buf is not None:
        opts.kernel_log_buf, opts.kernel_log_size = log_buf
    obj = lib().bpf_object__open_mem(buf, len(data), ctypes.byref(opts))
    return check_ptr(obj, "opening the eBPF object"), buf


def iter_maps(obj: int) -> Iterator[int]:
    m = lib().bpf_object__next_map(obj, None)
    while m:
        yield m
        m = lib().bpf_object__next_map(obj, m)


def iter_programs(obj: int) -> Iterator[int]:
    p = lib().bpf_object__next_program(obj, None)
    while p:
        yield p
        p = lib().bpf_object__next_program(obj, p)


def map_name(m: int) -> str:
    return (lib().bpf_map__name(m) or b"").decode()


def prog_name(p: int) -> str:
    return (lib().bpf_program__name(p) or b"").decode()


def prog_section(p: int) -> str:
    return (lib().bpf_program__section_name(p) or b"").decode()


def initial_value(m: int) -> bytes | None:
    size = c_size_t(0)
    ptr = lib().bpf_map__initial_value(m, ctypes.byref(size))
    if not ptr:
        return None
    return ctypes.string_at(ptr, size.value)


def set_initial_value(m: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(data, len(data))
    check_int(lib().bpf_map__set_initial_value(m, buf, len(data)),
              f"setting the initial value of map {map_name(m)}")


def obj_id(fd: int) -> int:
    """The kernel id of a BPF object (program, map, link) from its fd."""
    info = ctypes.create_string_buffer(256)
    size = c_uint32(256)
    check_int(lib().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)), "reading object info")
    return int.from_bytes(info.raw[4:8], "little")


class MapCreateOpts(ctypes.Structure):
    """struct bpf_map_create_opts as of libbpf 1.1 (sz tells newer libbpfs what we know)."""

    _fields_ = [
        ("sz", c_size_t),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("inner_map_fd", c_uint32),
        ("map_flags", c_uint32),
        ("map_extra", ctypes.c_uint64),
        ("numa_node", c_uint32),
        ("map_ifindex", c_uint32),
    ]


def map_create(map_type: int, name: str, key_size: int, value_size: int, max_entries: int,
               inner_map_fd: int = 0) -> int:
    """A new map (its fd; the caller closes it). ``inner_map_fd``: the template of a map
    of maps."""
    opts = MapCreateOpts(sz=ctypes.sizeof(MapCreateOpts), inner_map_fd=inner_map_fd)
    fd = lib().bpf_map_create(map_type, name.encode()[:15] or None, key_size, value_size,
                              max_entries, ctypes.byref(opts))
    return check_int(fd, f"creating map {name!r}")


def map_fd_by_id(map_id: int) -> int:
    """An fd of the map with kernel id ``map_id`` (the caller closes it)."""
    return check_int(lib().bpf_map_get_fd_by_id(map_id), f"opening map id {map_id}")


def map_info(fd: int) -> tuple[int, int, int, int, int, str]:
    """(type, id, key size, value size, max entries, name) of the map behind ``fd``
    (struct bpf_map_info's first fields)."""
    info = ctypes.create_string_buffer(88)
    size = c_uint32(88)
    check_int(lib().bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)), "reading map info")
    typ, mid, ks, vs, me = (int.from_bytes(info.raw[i:i + 4], "little") for i in range(0, 20, 4))
    return typ, mid, ks, vs, me, info.raw[24:40].split(b"\0", 1)[0].decode("utf-8", "replace")


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """The value of ``key`` (``value_size`` bytes), or None when there is none."""
    v = ctypes.create_string_buffer(value_size)
    if lib().bpf_map_lookup_elem(fd, key, v) < 0:
        err = errno_now()
        if err == _errno.ENOENT:
            return None
        raise LibbpfError("looking up a map entry", err)
    return v.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    check_int(lib().bpf_map_update_elem(fd, key, value, flags), "updating a map entry")


def map_delete(fd: int, key: bytes) -> None:
    check_int(lib().bpf_map_delete_elem(fd, key), "deleting a map entry")


def attach_uprobe(prog: int, binary: str, symbol: str, offset: int, retprobe: bool,
                  pid: int = -1) -> int:
    """A uprobe (or uretprobe) on ``symbol``+``offset`` of ``binary``; returns the link.
    libbpf finds the symbol's file offset in the ELF file itself."""
    opts = UprobeOpts(sz=ctypes.sizeof(UprobeOpts), retprobe=retprobe,
                      func_name=symbol.encode() if symbol else None)
    link = lib().bpf_program__attach_uprobe_opts(prog, pid, binary.encode(), offset,
                                                 ctypes.byref(opts))
    return check_ptr(link, f"attaching a uprobe to {binary}:{symbol}")


def attach_usdt(prog: int, binary: str, provider: str, name: str, pid: int = -1) -> int:
    """The USDT probe ``provider``:``name`` of ``binary`` (every site of it, in one link).
    libbpf reads the file's ``.note.stapsdt`` notes and fills the object's
    ``__bpf_usdt_specs`` map (from <bpf/usdt.bpf.h>) with where each argument is; the
    program reads them with ``bpf_usdt_arg``/``BPF_USDT``."""
    fn = getattr(lib(), "bpf_program__attach_usdt", None)
    if fn is None:
        raise LibbpfError("this libbpf has no USDT support (libbpf 0.8 or later has)",
                          _errno.ENOSYS)
    link = fn(prog, pid, binary.encode(), provider.encode(), name.encode(), None)
    return check_ptr(link, f"attaching USDT probe {provider}:{name} of {binary}")


def prog_type(p: int) -> int:
    return int(lib().bpf_program__type(p))


def map_type(m: int) -> int:
    return int(lib().bpf_map__type(m))


def num_possible_cpus() -> int:
    return check_int(lib().libbpf_num_possible_cpus(), "counting possible CPUs")


def percpu_u64_sum(map_fd: int, key: int = 0) -> int:
    """Sum over CPUs of a per-CPU array slot holding a u64 (e.g. ``<map>_lost_samples``)."""
    ncpu = num_possible_cpus()
    vals = (ctypes.c_uint64 * ncpu)()
    k = c_uint32(key)
    check_int(lib().bpf_map_lookup_elem(map_fd, ctypes.byref(k), vals), "reading a per-CPU counter")
    return sum(vals)


_BATCH_FULL = -_errno.ECANCELED  # our callback's "stop here" (the record is kept)


class RingBuffer:
    """ring_buffer__new/poll/free over one map; records are copied out as bytes.

    One poll hands over at most ``batch`` records: libbpf would otherwise keep calling
    back for as long as the producer keeps up, and the copies would pile up in memory
    faster than they are decoded. With the limit, a reader that falls behind leaves the
    records in the ring buffer, where a full buffer shows up as lost samples."""

    def __init__(self, map_fd: int, on_sample: Callable[[bytes], None],
                 batch: int = 4096) -> None:
        taken = [0]

        def cb(_ctx: int | None, data: int, size: int) -> int:
            on_sample(ctypes.string_at(data, size))
            taken[0] += 1
            return _BATCH_FULL if taken[0] >= batch else 0

        self._taken = taken
        self._cb = SAMPLE_FN(cb)  # keep a reference for as long as libbpf may call it
        self._rb: int | None = check_ptr(lib().ring_buffer__new(map_fd, self._cb, None, None),
                             "creating the ring buffer reader")

    def poll(self, timeout_ms: int) -> int:
        self._taken[0] = 0
        rc = lib().ring_buffer__poll(self._rb, timeout_ms)
        if rc == -_errno.EINTR:
            return 0
        if rc == _BATCH_FULL:
            return self._taken[0]
        return check_int(rc, "polling the ring buffer")

    def epoll_fd(self) -> int:
        """An fd that polls readable when the ring buffer has records (for one wait on
        several readers)."""
        return check_int(lib().ring_buffer__epoll_fd(self._rb), "the ring buffer's epoll fd")

    def close(self) -> None:
        if self._rb:
            lib().ring_buffer__free(self._rb)
            self._rb = None


class PerfBuffer:
    """perf_buffer__new/poll/free over a BPF_MAP_TYPE_PERF_EVENT_ARRAY map.

    ``page_cnt`` pages (a power of two) per CPU. ``on_lost(cpu, count)`` is called when the
    kernel dropped records because a CPU's buffer was full.
    """

    def __init__(self, map_fd: int, page_cnt: int, on_sample: Callable[[bytes], None],
                 on_lost: Callable[[int, int], None]) -> None:
        if page_cnt < 1 or page_cnt & (page_cnt - 1):
            raise ValueError(f"perf buffer pages must be a power of two, not {page_cnt}")

        def sample(_ctx: int | None, _cpu: int, data: int, size: int) -> None:
            on_sample(ctypes.string_at(data, size))

        def lost(_ctx: int | None, cpu: int, count: int) -> None:
            on_lost(cpu, count)

        self._sample = PERF_SAMPLE_FN(sample)
        self._lost = PERF_LOST_FN(lost)
        self._pb: int | None = check_ptr(
            lib().perf_buffer__new(map_fd, page_cnt, self._sample, self._lost, None, None),
            "creating the perf buffer reader")

    def poll(self, timeout_ms: int) -> int:
        rc = lib().perf_buffer__poll(self._pb, timeout_ms)
        if rc == -_errno.EINTR:
            return 0
        return check_int(rc, "polling the perf buffer")

    def epoll_fd(self) -> int:
        """An fd that polls readable when a CPU's buffer has records."""
        return check_int(lib().perf_buffer__epoll_fd(self._pb), "the perf buffer's epoll fd")

    def close(self) -> None:
        if self._pb:
            lib().perf_buffer__free(self._pb)
            self._pb = None
