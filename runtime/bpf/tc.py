"""TC classifier programs (IG's ``classifier/ingress/NAME``, ``classifier/egress/NAME``)
attached with libbpf's ``bpf_tc_*`` to an interface of this network namespace: the
``clsact`` qdisc is made when the interface has none (and removed with the last filter
this run added), the program is a direct-action filter on the hook of its direction.

Without an interface, as ig does, :class:`ContainerClassifiers` attaches them to each
container's network: the host end of each of the container's veth interfaces, the
direction turned around (what the container sends arrives at the host end's ingress).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.errors import RuntimeGadgetError

DIRECTIONS = {"ingress": L.TC_INGRESS, "egress": L.TC_EGRESS}


def direction_of(name: str, section: str) -> int:
    """The hook of ``classifier/<ingress|egress>/...``; an error naming the program otherwise."""
    parts = section.split("/")
    if len(parts) < 2 or parts[1] not in DIRECTIONS:
        raise RuntimeGadgetError(
            f"program {name} ({section}) cannot attach: a classifier's section is "
            "classifier/ingress/NAME or classifier/egress/NAME")
    return DIRECTIONS[parts[1]]


def _hook(ifindex: int, point: int) -> L.TcHook:
    return L.TcHook(sz=ctypes.sizeof(L.TcHook), ifindex=ifindex, attach_point=point)


class TcAttachment:
    """One classifier on one interface's hook; :meth:`close` removes the filter, and the
    clsact qdisc when this attachment made it."""

    def __init__(self, prog_fd: int, name: str, section: str, iface: str,
                 turned: bool = False) -> None:
        self.name, self.section, self.iface = name, section, iface
        try:
            self.ifindex = socket.if_nametoindex(iface)
        except OSError:
            raise RuntimeGadgetError(
                f"program {name} ({section}) cannot attach: iface={iface!r}: no such network "
                "interface here ('ip link' lists them)") from None
        self.point = direction_of(name, section)
        if turned:  # a container's hook on the host end of its veth
            self.point = L.TC_EGRESS if self.point == L.TC_INGRESS else L.TC_INGRESS
        hook = _hook(self.ifindex, self.point)
        rc = L.lib().bpf_tc_hook_create(ctypes.byref(hook))
        if rc < 0 and -rc != errno.EEXIST:
            raise self._error("creating its clsact qdisc", -rc)
        self.made_qdisc = rc == 0
        self.opts: L.TcOpts | None = L.TcOpts(sz=ctypes.sizeof(L.TcOpts), prog_fd=prog_fd)
        rc = L.lib().bpf_tc_attach(ctypes.byref(hook), ctypes.byref(self.opts))
        if rc < 0:
            self._destroy_qdisc()
            raise self._error("adding the filter", -rc)

    def _error(self, what: str, err: int) -> RuntimeGadgetError:
        log = L.take_log().strip().splitlines()
        name = errno.errorcode.get(err, f"errno {err}")
        return RuntimeGadgetError(f"program {self.name} ({self.section}) cannot attach to "
                                  f"{self.iface}: {what}: {name} ({os.strerror(err)})"
                                  + (f": {log[-1]}" if log else ""))

    def _destroy_qdisc(self) -> None:
        if self.made_qdisc:
            hook = _hook(self.ifindex, L.TC_INGRESS | L.TC_EGRESS)
            L.lib().bpf_tc_hook_destroy(ctypes.byref(hook))
            self.made_qdisc = False

    def close(self) -> None:
        if self.opts is None:
            return
        hook = _hook(self.ifindex, self.point)
        opts = L.TcOpts(sz=ctypes.sizeof(L.TcOpts), handle=self.opts.handle,
                        priority=self.opts.priority)
        L.lib().bpf_tc_detach(ctypes.byref(hook), ctypes.byref(opts))  # gone with the iface
        self.opts = None
        self._destroy_qdisc()


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def host_peers(pid: int) -> list[str]:
    """The host ends of the interfaces of ``pid``'s network namespace that have one (a
    veth's ``iflink`` is its peer's ifindex), read from the container's own ``/sys``
    (``/proc/PID/root/sys/class/net``) and checked from this side: the host interface of
    that index must name the container's interface as its peer."""
    base = f"/proc/{pid}/root/sys/class/net"
    out = []
    for name in sorted(os.listdir(base)):
        with contextlib.suppress(OSError, ValueError):
            index, link = _read_int(f"{base}/{name}/ifindex"), _read_int(f"{base}/{name}/iflink")
            if link == index:
                continue  # lo, or an interface without a peer
            host = socket.if_indextoname(link)
            if _read_int(f"/sys/class/net/{host}/iflink") == index:
                out.append(host)
    return out


class _Closable(Protocol):
    def close(self) -> None: ...


#: (program fd, name, network namespace) -> (the fd to attach, a dispatcher to close or None)
Dispatch = Callable[[int, str, int], tuple[int, "_Closable | None"]]


class ContainerClassifiers:
    """The classifiers of a run without ``iface``, on each container's veth host ends
    (:func:`host_peers`), as ig attaches them: one attachment per interface however many
    containers share it (a pod's network), gone with the last of them. A gadget of the
    sockets map gets a dispatcher with the container's network namespace. Containers
    sharing the host's network are left out (as ig); an interface that cannot take the
    filter is a warning, not the end of the run."""

    def __init__(self, dispatch: Dispatch, warn: Callable[[str], None],
                 debug: Callable[[str], None]) -> None:
        self.programs: dict[str, tuple[int, str]] = {}  # name -> (program fd, section)
        self._dispatch, self._warn, self._debug = dispatch, warn, debug
        self._attached: dict[str, list[_Closable]] = {}  # host interface -> what to close
        self._users: dict[str, set[str]] = {}
        self._owned: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add(self, owner: str, pid: int, label: str, host_netns: int) -> None:
        """The container ``owner`` (its first process ``pid``); again for one is a no-op."""
        if not self.programs:
            return
        with self._lock:
            if owner in self._owned:
                return
            try:
                netns = os.stat(f"/proc/{pid}/ns/net").st_ino
                ifaces = [] if netns == host_netns else host_peers(pid)
            except OSError as e:
                self._debug(f"container {label}: no classifiers attached: {e.strerror}")
                return
            if not ifaces:
                self._debug(f"container {label}: no classifiers attached (the host's network "
                            "or no veth interface)")
            self._owned[owner] = ifaces
            for iface in ifaces:
                users = self._users.setdefault(iface, set())
                if not users:
                    self._attach(iface, netns, label)
                users.add(owner)

    def _attach(self, iface: str, netns: int, label: str) -> None:
        done: list[_Closable] = []
        try:
            for name, (fd, section) in self.programs.items():
                fd, disp = self._dispatch(fd, name, netns)
                if disp is not None:
                    done.append(disp)
                done.append(TcAttachment(fd, name, section, iface, turned=True))
                self._debug(f"container {label}: program {name} ({section}) on {iface}")
        except RuntimeGadgetError as e:
            self._warn(f"container {label}: {e}")
            for d in reversed(done):
                d.close()
            return
        self._attached[iface] = done

    def remove(self, owner: str) -> None:
        with self._lock:
            for iface in self._owned.pop(owner, []):
                users = self._users.get(iface, set())
                users.discard(owner)
                if not users:
                    self._users.pop(iface, None)
                    for d in reversed(self._attached.pop(iface, [])):
                        d.close()

    def interfaces(self) -> list[str]:
        with self._lock:
            return sorted(self._attached)

    def close(self) -> None:
        with self._lock:
            for done in self._attached.values():
                for d in reversed(done):
                    d.close()
            self._attached.clear()
            self._users.clear()
            self._owned.clear()


__all__ = ["DIRECTIONS", "ContainerClassifiers", "TcAttachment", "direction_of", "host_peers"]
