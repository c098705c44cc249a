"""TC classifier programs (IG's ``classifier/ingress/NAME``, ``classifier/egress/NAME``)
attached with libbpf's ``bpf_tc_*`` to an interface of this network namespace: the
``clsact`` qdisc is made when the interface has none (and removed with the last filter
this run added), the program is a direct-action filter on the hook of its direction.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket

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

    def __init__(self, prog_fd: int, name: str, section: str, iface: str) -> None:
        self.name, self.section, self.iface = name, section, iface
        try:
            self.ifindex = socket.if_nametoindex(iface)
        except OSError:
            raise RuntimeGadgetError(
                f"program {name} ({section}) cannot attach: iface={iface!r}: no such network "
                "interface here ('ip link' lists them)") from None
        self.point = direction_of(name, section)
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


__all__ = ["DIRECTIONS", "TcAttachment", "direction_of"]
