"""Load a gadget's eBPF object into the kernel: params, map sizing, load, attach.

The object comes from the image's eBPF layer for this host's architecture (or from a
file). Params are written into ``.rodata`` before loading; ``<map>_max_entries`` variables
size their maps; every program is attached by its ELF section through libbpf.

Uprobes and USDT probes are attached to this host's file and, through
:meth:`LoadedGadget.attach_container_uprobes`, to each container's own copy of it (one
probe per distinct file).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gadgetsmith.runtime.bpf import dispatcher, perf_event, tc
from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.objmodel import GadgetObject, Param  # the static model; re-exported for callers
from gadgetsmith.runtime.bpf.verifier import VerifierLog, explain
from gadgetsmith.runtime.errors import LibbpfError, RuntimeGadgetError
from gadgetsmith.runtime.probes.uprobes import (
    FILE_PROBE_KINDS,
    NotInRoot,
    UprobeTarget,
    UsdtTarget,
    file_identity,
    parse_section,
    resolve_in_root,
)

MNTNS_MAP = "gadget_mntns_filter_map"
SO_ATTACH_BPF = 50


def ensure_fs() -> None:
    """Mount bpffs and tracefs when missing (libbpf needs tracefs for tracepoint ids)."""
    for path, fstype in (("/sys/fs/bpf", "bpf"), ("/sys/kernel/tracing", "tracefs")):
        if os.path.ismount(path):
            continue
        if fstype == "tracefs" and os.path.exists("/sys/kernel/debug/tracing/events"):
            continue
        with contextlib.suppress(OSError):
            subprocess.run(["mount", "-t", fstype, fstype, path], capture_output=True, check=False)


PROGRAM_DISABLED = "gadget_program_disabled"  # IG's attach_to value for "do not attach"


def _attach_to(prog: int, name: str, section: str) -> int:
    """A kprobe, kretprobe, tracepoint or raw tracepoint attached to another target than
    its section's (``section`` is the section it would have)."""
    kind, _, target = section.partition("/")
    lib = L.lib()
    if kind in ("kprobe", "kretprobe"):
        link = lib.bpf_program__attach_kprobe(prog, kind == "kretprobe", target.encode())
    elif kind in ("tracepoint", "tp") and "/" in target:
        cat, _, tp = target.partition("/")
        link = lib.bpf_program__attach_tracepoint(prog, cat.encode(), tp.encode())
    elif kind in ("raw_tracepoint", "raw_tp"):
        link = lib.bpf_program__attach_raw_tracepoint(prog, target.encode())
    else:
        raise RuntimeGadgetError(f"program {name}: attach_to {target!r} is not supported for "
                                 f"{kind} programs (kprobes, tracepoints, raw tracepoints)")
    if not link:
        err = LibbpfError(f"attaching {name}", L.errno_now(), L.take_log())
        raise RuntimeGadgetError(f"program {name} ({section}) cannot attach: {_attach_hint(section, err)}")
    return int(link)


def _attach_hint(section: str, err: LibbpfError) -> str:
    kind = section.split("/", 1)[0]
    if kind in ("kprobe", "kretprobe") and not os.path.exists("/sys/kernel/tracing/kprobe_events"):
        return "this kernel has no kprobe support (CONFIG_KPROBES is not set)"
    if kind in ("tracepoint", "tp") and err.err == 2:
        return "no such tracepoint on this kernel"
    if err.err == 1:
        return "permission denied: run as root (CAP_BPF and CAP_PERFMON)"
    return err.strerror or str(err)


#: program types of section prefixes ig accepts that libbpf 1.1 does not know
#: ("socket1", "perf_event/profiler"; "perf_event" alone libbpf knows)
_IG_SECTION_TYPES = {"socket": L.PROG_TYPE_SOCKET_FILTER, "perf_event": L.PROG_TYPE_PERF_EVENT,
                     "classifier": L.PROG_TYPE_SCHED_CLS}


class Closable(Protocol):
    def close(self) -> None: ...


class PerfEventLinks:
    """A perf_event program's links, one per CPU (each owns its perf event's fd)."""

    def __init__(self) -> None:
        self.links: list[int] = []

    def close(self) -> None:
        while self.links:
            L.lib().bpf_link__destroy(self.links.pop())


def _attach_perf_events(prog: int, name: str, section: str, metadata: dict[str, Any]) -> PerfEventLinks:
    """The program on a sampling event of every online CPU, as gadget.yaml's
    ``programs.NAME`` describes it (see :mod:`.perf_event`)."""
    try:
        cfg = perf_event.config_for(metadata, section)
    except perf_event.PerfConfigError as e:
        raise RuntimeGadgetError(f"program {name} ({section}) cannot attach: {e}") from None
    out = PerfEventLinks()
    try:
        for cpu in perf_event.online_cpus():
            fd = perf_event.open_event(cfg, cpu)
            link = L.lib().bpf_program__attach_perf_event(prog, fd)
            if not link:
                err = L.errno_now()
                os.close(fd)
                raise OSError(err, f"attaching to the perf event of CPU {cpu}: {os.strerror(err)}")
            out.links.append(link)
    except OSError as e:
        out.close()
        raise RuntimeGadgetError(f"program {name} ({section}) cannot attach: {e.strerror}") from None
    return out


HOST = "host"  # the owner of uprobe attachments made for this host's processes
USDT_MAPS = ("__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id")  # from <bpf/usdt.bpf.h>


def _attach_file_probe(prog: int, t: UprobeTarget | UsdtTarget, path: str) -> int:
    if isinstance(t, UsdtTarget):
        return L.attach_usdt(prog, path, t.provider, t.name)
    return L.attach_uprobe(prog, path, t.symbol, t.offset, t.retprobe)


def _file_probe_hint(section: str, t: UprobeTarget | UsdtTarget, inner: str,
                     err: LibbpfError) -> str:
    """Why a probe could not be attached to ``inner`` (the file as its owner sees it)."""
    if isinstance(t, UsdtTarget):
        if err.err == 2:  # libbpf: no .note.stapsdt, or no note of that provider and name
            return f"no USDT probe {t.probe} in {inner}"
        # libbpf's last usdt message says what was wrong with the file
        said = [line.split("usdt: ", 1)[1].strip() for line in err.log.splitlines()
                if "usdt: " in line and "discovered" not in line]
        if said:
            return f"{inner}: {said[-1]}"
    elif err.err == 2:
        return f"no symbol {t.symbol} in {inner}"
    return _attach_hint(section, err)


@dataclass
class UprobeAttachment:
    """One uprobe (or USDT) link: a program on one file, for the host and/or containers."""

    program: str
    section: str
    path: str  # as given to the kernel: a host path or /proc/<pid>/root/...
    file: tuple[int, int]  # (st_dev, st_ino) of the probed file (see uprobes.file_identity)
    link: int
    owners: dict[str, str] = field(default_factory=dict)  # owner id -> name ("host", container)


class LoadedGadget:
    """An object loaded into the kernel with its programs attached. Close it when done.

    ``on_warning`` / ``on_debug`` receive one-line messages (a container's copy of a
    library without the probed symbol; which file each uprobe is attached to)."""

    def __init__(self, gobj: GadgetObject, values: dict[str, str] | None = None,
                 autoattach: bool = True, filter_by_mntns: bool = False,
                 on_warning: Callable[[str], None] | None = None,
                 on_debug: Callable[[str], None] | None = None,
                 btf_custom_path: str | None = None) -> None:
        self.gobj = gobj
        self.btf_custom_path = btf_custom_path  # see runtime/bpf/btfgen.py
        self.filter_by_mntns = filter_by_mntns
        self.on_warning = on_warning
        self.on_debug = on_debug
        # (program, file) -> attachment; containers' probes are added from the container
        # collection's thread, hence the lock (close() takes it too)
        self.uprobes: dict[tuple[str, tuple[int, int]], UprobeAttachment] = {}
        self._uprobe_failed: dict[tuple[str, tuple[int, int]], str] = {}
        self._uprobe_owned: dict[str, list[tuple[str, tuple[int, int]]]] = {}
        self._uprobe_lock = threading.RLock()
        self.obj: int | None = None
        self.links: dict[str, int] = {}
        self.sockets: dict[str, Any] = {}
        #: attachments of one program that are more than a link (closed with the object)
        self.handles: dict[str, Closable] = {}
        self.maps: dict[str, int] = {}
        self.programs: dict[str, tuple[int, str]] = {}
        #: the interface TC classifier programs attach to (ig's ``iface`` param); without
        #: one, each container's (:meth:`attach_container_tc`) when :attr:`tc_containers`
        self.tc_iface: str | None = None
        self.tc_containers = False
        self.container_tc = tc.ContainerClassifiers(self._dispatch, self._warn, self._debug)
        ensure_fs()
        self._open(values or {})
        if autoattach:
            self.attach_all()

    def _open(self, values: dict[str, str]) -> None:
        vlog = VerifierLog()
        try:
            self._open_logged(values, vlog)
        finally:
            vlog.close()

    def _open_logged(self, values: dict[str, str], vlog: VerifierLog) -> None:
        obj, self._buf = L.open_mem(self.gobj.data, self.btf_custom_path,
                                    (vlog.address, vlog.size))
        self.obj = obj
        try:
            for m in L.iter_maps(obj):
                self.maps[L.map_name(m)] = m
            for p in L.iter_programs(obj):
                self.programs[L.prog_name(p)] = (p, L.prog_section(p))
                # sections ig knows and libbpf 1.1 does not: "socket1", "perf_event/NAME"
                kind = _IG_SECTION_TYPES.get(L.prog_section(p).split("/", 1)[0].rstrip("0123456789"))
                if kind is not None and L.prog_type(p) == 0:
                    L.check_int(L.lib().bpf_program__set_type(p, kind),
                                f"setting the type of program {L.prog_name(p)}")
            rodata_map = next((m for n, m in self.maps.items() if n.endswith(".rodata")), None)
            if rodata_map is not None:
                self._set_rodata(rodata_map, values)
            templates = self._size_inner_perf_arrays()
            L.take_log()
            try:
                rc = L.lib().bpf_object__load(obj)
            finally:
                for fd in templates:
                    os.close(fd)
            if rc < 0:
                err = explain(-rc, L.take_log(), vlog.text(),
                              {n: sec for n, (_p, sec) in self.programs.items()})
                if err.verifier_log:
                    self._debug(f"verifier log of program {err.program} ({err.section}):\n"
                                + err.verifier_log.rstrip())
                raise err
        except BaseException:
            self.close()
            raise

    def _size_inner_perf_arrays(self) -> list[int]:
        """A map of perf event arrays (IG's traceloop) declares its inner map without
        max_entries, which cilium/ebpf sets to the number of CPUs and libbpf 1.1 passes on
        as 0 (EINVAL): the template is made here with that size instead (libbpf 1.1 cannot
        resize an inner map). Returns the templates' fds, closed once the object loaded."""
        fds = []
        for m in self.maps.values():
            if L.map_type(m) not in (L.MAP_TYPE_ARRAY_OF_MAPS, L.MAP_TYPE_HASH_OF_MAPS):
                continue
            inner = L.lib().bpf_map__inner_map(m)
            if not inner or L.map_type(inner) != L.MAP_TYPE_PERF_EVENT_ARRAY or \
                    L.lib().bpf_map__max_entries(inner) != 0:
                continue
            fd = L.map_create(L.MAP_TYPE_PERF_EVENT_ARRAY, f"{L.map_name(m)}.inner",
                              L.lib().bpf_map__key_size(inner), L.lib().bpf_map__value_size(inner),
                              L.num_possible_cpus())
            fds.append(fd)
            L.check_int(L.lib().bpf_map__set_inner_map_fd(m, fd),
                        f"setting the inner map of {L.map_name(m)}")
        return fds

    def _set_rodata(self, rodata_map: int, values: dict[str, str]) -> None:
        current = L.initial_value(rodata_map)
        if current is None:
            return
        data = bytearray(current)
        for key, text in values.items():
            p = self.gobj.param(key)
            data[p.offset:p.offset + p.size] = p.encode(text)
        rovars = self.gobj.rodata_vars()
        # classifiers alone select containers by where they attach (each one's network)
        classifiers_only = bool(self.programs) and all(
            sec.split("/", 1)[0] in ("classifier", "tc") for _p, sec in self.programs.values())
        if self.filter_by_mntns:
            if "gadget_filter_by_mntns" in rovars and MNTNS_MAP in self.maps:
                _tid, off, size = rovars["gadget_filter_by_mntns"]
                data[off:off + size] = b"\1" + bytes(size - 1)
            elif not classifiers_only:
                raise RuntimeGadgetError(
                    "this gadget cannot filter by container (it does not include "
                    "<gadget/mntns_filter.h>): run it with --host")
        # <map>_max_entries convention
        for name, (_tid, off, size) in rovars.items():
            if not name.endswith("_max_entries"):
                continue
            target = self.maps.get(name[: -len("_max_entries")])
            if target is None or size not in (1, 2, 4, 8):
                continue
            value = int.from_bytes(data[off:off + size], "little", signed=True)
            if value > 0:
                L.check_int(L.lib().bpf_map__set_max_entries(target, value),
                            f"sizing map {name[:-len('_max_entries')]}")
        L.set_initial_value(rodata_map, bytes(data))

    def attach_all(self, skip: set[str] | None = None,
                   targets: dict[str, str] | None = None) -> None:
        """Every program but ``skip``'s. ``targets``: program -> what to attach it to
        instead of its section's target (IG's ``programs.<name>.attach_to``, from
        gadget.yaml or a WASM module); ``gadget_program_disabled`` leaves it unattached."""
        targets = targets or {}
        for name in list(self.programs):
            if skip and name in skip:
                continue
            if targets.get(name) == PROGRAM_DISABLED:
                self._debug(f"program {name} ({self.programs[name][1]}): not attached "
                            f"(attach_to: {PROGRAM_DISABLED})")
                continue
            self.attach(name, targets.get(name))

    def attach(self, name: str, target: str | None = None) -> int:
        """Attach one program by its section (or to ``target``, see :meth:`attach_all`);
        returns its link (0 for socket filters, whose attachment is a raw socket held in
        :attr:`sockets`)."""
        prog, section = self.programs[name]
        L.take_log()
        kind = section.split("/", 1)[0]
        if target:
            section = f"{kind}/{target}"
        try:
            if target and kind not in FILE_PROBE_KINDS:
                link = _attach_to(prog, name, section)
            elif kind in FILE_PROBE_KINDS:
                link = self._attach_uprobe(prog, name, section)
                if not link:
                    return 0
            elif L.prog_type(prog) == L.PROG_TYPE_SOCKET_FILTER:
                self.sockets[name] = self._attach_socket(self._dispatched(prog, name), name,
                                                         section)
                return 0
            elif L.prog_type(prog) == L.PROG_TYPE_PERF_EVENT:
                self.handles[name] = _attach_perf_events(prog, name, section, self.gobj.metadata)
                return 0
            elif L.prog_type(prog) == L.PROG_TYPE_SCHED_CLS:
                self._attach_tc(prog, name, section)
                return 0
            else:
                link = L.lib().bpf_program__attach(prog)
                if not link:
                    err = LibbpfError(f"attaching {name}", L.errno_now(), L.take_log())
                    raise RuntimeGadgetError(
                        f"program {name} ({section}) cannot attach: {_attach_hint(section, err)}")
        except BaseException:
            self.close()
            raise
        self.links[name] = link
        return link

    def _attach_tc(self, prog: int, name: str, section: str) -> None:
        """A classifier on the hook its section names of the ``iface`` interface; without
        one, on each container's network as ig (:attr:`tc_containers`), or a warning."""
        tc.direction_of(name, section)
        if not self.tc_iface:
            if self.tc_containers:
                self.container_tc.programs[name] = (L.lib().bpf_program__fd(prog), section)
                return
            self._warn(f"program {name} ({section}) is not attached: no interface: give one "
                       "with -p iface=NAME (without --host, each container's is used)")
            return
        self.handles[name] = tc.TcAttachment(self._dispatched(prog, name), name, section,
                                             self.tc_iface)

    def attach_container_tc(self, owner: str, pid: int, name: str = "") -> None:
        """The classifiers (a run without ``iface``) on the container's veth host ends."""
        if self.obj is not None:
            self.container_tc.add(owner, pid, name or owner[:12], dispatcher.netns_inode())

    def detach_container_tc(self, owner: str) -> None:
        self.container_tc.remove(owner)

    def _dispatch(self, fd: int, name: str, netns: int) -> tuple[int, Closable | None]:
        """The fd to attach program ``fd`` by for network namespace ``netns``, and the
        dispatcher to close with it (a gadget of the sockets map; see :meth:`_dispatched`)."""
        if "gadget_sockets" not in self.maps:
            return fd, None
        disp = dispatcher.Dispatcher(fd, L.prog_type(self.programs[name][0]), netns, name)
        return disp.fd, disp

    def _dispatched(self, prog: int, name: str) -> int:
        """The fd to attach a socket filter or classifier by: a gadget of the sockets map
        gets IG's dispatcher in front (skb->cb[0] = this network namespace's inode, what
        its lookups by packet read), others the program itself."""
        fd, disp = self._dispatch(L.lib().bpf_program__fd(prog), name, dispatcher.netns_inode())
        if disp is not None:
            self.handles[f"{name} dispatcher"] = disp
        return fd

    def _warn(self, text: str) -> None:
        if self.on_warning is not None:
            self.on_warning(text)

    def _debug(self, text: str) -> None:
        if self.on_debug is not None:
            self.on_debug(text)

    def _file_probe_target(self, name: str, section: str) -> UprobeTarget | UsdtTarget:
        """The parsed section of a uprobe or USDT program; an error naming the program
        when the section is malformed or the object cannot run a USDT program."""
        try:
            t = parse_section(section)
        except RuntimeGadgetError as e:
            raise RuntimeGadgetError(f"program {name} ({section}) cannot attach: {e}") from None
        if isinstance(t, UsdtTarget) and not all(m in self.maps for m in USDT_MAPS):
            raise RuntimeGadgetError(
                f"program {name} ({section}) cannot attach: the object has no USDT argument "
                f"maps ({', '.join(USDT_MAPS)}): #include <bpf/usdt.bpf.h> in the gadget's "
                "source and use BPF_USDT or bpf_usdt_arg(), or <gadget/usdt_argument.h> "
                "and usdt_get_argument()")
        return t

    def _attach_uprobe(self, prog: int, name: str, section: str) -> int:
        """The host's attachment of a uprobe or USDT program. A host without the file,
        the symbol or the USDT probe is a warning (0 is returned) and the other programs
        still run, as in ig (a library that is not installed: nothing calls it here);
        containers' own copies are probed by :meth:`attach_container_uprobes`."""
        t = self._file_probe_target(name, section)
        path = ""
        try:
            path = t.path()
            ident = file_identity("self", path)
            with self._uprobe_lock:
                att = self.uprobes.get((name, ident))
                if att is None:
                    link = _attach_file_probe(prog, t, path)
                    att = self.uprobes[(name, ident)] = UprobeAttachment(
                        name, section, path, ident, link)
                att.owners[HOST] = HOST
                self._uprobe_owned.setdefault(HOST, []).append((name, ident))
        except (RuntimeGadgetError, OSError, LibbpfError) as e:
            missing = not isinstance(e, LibbpfError) or e.err == 2
            if isinstance(e, LibbpfError):
                hint = _file_probe_hint(section, t, path, e)
            else:
                hint = (e.strerror or str(e)) if isinstance(e, OSError) else str(e)
            if missing:
                self._warn(f"program {name} ({section}) is not attached on this host: {hint}")
                return 0
            raise RuntimeGadgetError(f"program {name} ({section}) cannot attach: {hint}") from None
        self._debug(f"program {name} ({section}): attached to {path} for the host")
        return att.link

    def uprobe_programs(self) -> list[str]:
        """The programs attached to files: uprobes, uretprobes and USDT probes."""
        return [n for n, (_p, sec) in self.programs.items()
                if sec.split("/", 1)[0] in FILE_PROBE_KINDS]

    def attach_container_uprobes(self, owner: str, pid: int, name: str = "") -> None:
        """Attach every uprobe and USDT program to the container's own copy of its file,
        resolved in the container's filesystem (``/proc/<pid>/root``), unless that file
        already has this program's probe (the host's file, or another container's: the
        same inode). A copy without the symbol or USDT probe is one warning; a container
        without the file is a debug message. Safe to call again for the same ``owner``
        (container id)."""
        label = name or owner[:12]
        root = f"/proc/{pid}/root"
        with self._uprobe_lock:
            if self.obj is None or owner in self._uprobe_owned:
                return
            owned = self._uprobe_owned[owner] = []
            for prog_name in self.uprobe_programs():
                prog, section = self.programs[prog_name]
                t = self._file_probe_target(prog_name, section)
                try:
                    inner = resolve_in_root(root, t.target)
                    key = (prog_name, file_identity(pid, inner))
                except NotInRoot as e:
                    self._debug(f"container {label}: program {prog_name} ({section}) "
                                f"not attached: {e}")
                    continue
                except OSError as e:  # the process is gone
                    self._debug(f"container {label}: {root} is not readable: {e.strerror}")
                    continue
                att = self.uprobes.get(key)
                if att is None:
                    failed = self._uprobe_failed.get(key)
                    if failed is None:
                        path = root + inner
                        try:
                            link = _attach_file_probe(prog, t, path)
                        except LibbpfError as e:
                            failed = self._uprobe_failed[key] = _file_probe_hint(
                                section, t, inner, e)
                        else:
                            att = self.uprobes[key] = UprobeAttachment(
                                prog_name, section, path, key[1], link)
                            self._debug(f"program {prog_name} ({section}): attached to "
                                        f"{path} for container {label}")
                    if failed is not None:
                        self._warn(f"container {label}: program {prog_name} ({section}) "
                                   f"is not attached: {failed}")
                        continue
                else:
                    self._debug(f"program {prog_name} ({section}): container {label} "
                                f"shares the probed file {att.path}")
                assert att is not None
                att.owners[owner] = label
                owned.append(key)

    def detach_container_uprobes(self, owner: str) -> None:
        """Forget a container; a probe no other container (nor the host) uses is removed."""
        with self._uprobe_lock:
            for key in self._uprobe_owned.pop(owner, []):
                att = self.uprobes.get(key)
                if att is None:
                    continue
                att.owners.pop(owner, None)
                if not att.owners:
                    if self.obj is not None:
                        L.lib().bpf_link__destroy(att.link)
                    del self.uprobes[key]
                    self._debug(f"program {att.program} ({att.section}): detached from "
                                f"{att.path}")

    def uprobe_attachments(self) -> list[UprobeAttachment]:
        with self._uprobe_lock:
            return [UprobeAttachment(a.program, a.section, a.path, a.file, a.link,
                                     dict(a.owners)) for a in self.uprobes.values()]

    @staticmethod
    def _attach_socket(fd: int, name: str, section: str) -> socket.socket:
        """A socket filter (``fd``) sees every packet of the host network namespace (all
        interfaces, both directions) through an AF_PACKET raw socket it is attached to."""
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        except OSError as e:
            raise RuntimeGadgetError(
                f"program {name} ({section}) cannot attach: raw socket: {e.strerror}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, fd)
        except OSError as e:
            sock.close()
            raise RuntimeGadgetError(
                f"program {name} ({section}) cannot attach: SO_ATTACH_BPF: {e.strerror}") from None
        return sock

    def set_mntns(self, mntns_ids: set[int] | list[int], present: bool = True) -> None:
        """Add (or remove) mount namespaces in the in-kernel container filter map (a
        gadget of classifiers alone may have none: nothing to do)."""
        if MNTNS_MAP not in self.maps:
            return
        fd = self.map_fd(MNTNS_MAP)
        one = ctypes.c_uint32(1)
        for ns in mntns_ids:
            key = ctypes.c_uint64(ns)
            if present:
                L.check_int(L.lib().bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(one), 0),
                            "updating the container filter map")
            else:
                L.lib().bpf_map_delete_elem(fd, ctypes.byref(key))

    def map_fd(self, name: str) -> int:
        if name not in self.maps:
            raise RuntimeGadgetError(f"the gadget has no map named {name}")
        return L.check_int(L.lib().bpf_map__fd(self.maps[name]), f"map {name}")

    def prog_ids(self) -> list[int]:
        ids = []
        for prog, _s in self.programs.values():
            fd = L.lib().bpf_program__fd(prog)
            if fd >= 0:
                ids.append(L.obj_id(fd))
        return ids

    def run_iterator(self, prog: str) -> bytes:
        link = self.links.get(prog) or self.attach(prog)
        fd = L.check_int(L.lib().bpf_iter_create(L.lib().bpf_link__fd(link)),
                         f"creating an iterator for {prog}")
        chunks = []
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def drain_hash(self, map_name: str, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
        fd = self.map_fd(map_name)
        lib = L.lib()
        key = ctypes.create_string_buffer(key_size)
        nxt = ctypes.create_string_buffer(key_size)
        val = ctypes.create_string_buffer(value_size)
        keys: list[bytes] = []
        rc = lib.bpf_map_get_next_key(fd, None, nxt)
        while rc == 0 and len(keys) < 1_000_000:
            keys.append(nxt.raw)
            ctypes.memmove(key, nxt, key_size)
            rc = lib.bpf_map_get_next_key(fd, key, nxt)
        out = []
        for k in keys:
            kb = ctypes.create_string_buffer(k, key_size)
            if lib.bpf_map_lookup_elem(fd, kb, val) == 0:
                out.append((k, val.raw))
                lib.bpf_map_delete_elem(fd, kb)
        return out

    def close(self) -> None:
        with self._uprobe_lock:
            host_links = set(self.links.values())
            for att in self.uprobes.values():
                if att.link not in host_links:
                    L.lib().bpf_link__destroy(att.link)
            self.uprobes.clear()
            self._uprobe_owned.clear()
            self._uprobe_failed.clear()
            self._close()

    def _close(self) -> None:
        self.container_tc.close()
        for link in self.links.values():
            L.lib().bpf_link__destroy(link)
        self.links.clear()
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()
        if self.obj:
            L.lib().bpf_object__close(self.obj)
            self.obj = None

    def __enter__(self) -> LoadedGadget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def host_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


__all__ = ["GadgetObject", "LoadedGadget", "Param", "host_arch"]
