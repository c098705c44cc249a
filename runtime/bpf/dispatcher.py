"""A dispatcher in front of a socket filter or a TC classifier, as IG has one: it writes
the network namespace's inode into ``skb->cb[0]`` (where ``<gadget/sockets-map.h>``'s
lookup by packet reads it) and tail-calls the gadget's program, whose verdict is the
packet's.

The dispatcher is six instructions assembled here (no compiler at run time):

    w2 = NETNS ; *(u32 *)(r1 + offsetof(struct __sk_buff, cb[0])) = w2
    r2 = PROG_ARRAY (map fd) ; r3 = 0 ; call bpf_tail_call ; r0 = 0 ; exit
"""

from __future__ import annotations

import ctypes
import os
import struct

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.errors import LibbpfError

MAP_TYPE_PROG_ARRAY = 3
SKB_CB0 = 48  # offsetof(struct __sk_buff, cb[0])
TAIL_CALL = 12  # BPF_FUNC_tail_call
PSEUDO_MAP_FD = 1
_INSN = struct.Struct("<BBhi")


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def program(netns: int, map_fd: int) -> bytes:
    """The dispatcher's instructions for network namespace ``netns``."""
    netns32 = netns - (1 << 32) if netns >= 1 << 31 else netns
    return b"".join((
        _insn(0xB4, dst=2, imm=netns32),             # w2 = netns (mov32, zero-extends)
        _insn(0x63, dst=1, src=2, off=SKB_CB0),      # *(u32 *)(r1 + cb[0]) = w2
        _insn(0x18, dst=2, src=PSEUDO_MAP_FD, imm=map_fd), _insn(0),  # r2 = map (ld_imm64)
        _insn(0xB7, dst=3, imm=0),                   # r3 = 0
        _insn(0x85, imm=TAIL_CALL),                  # bpf_tail_call(ctx, map, 0)
        _insn(0xB7, dst=0, imm=0),                   # not reached unless the call failed
        _insn(0x95),                                 # exit
    ))


def netns_inode(pid: int | str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


class Dispatcher:
    """The dispatcher of the program ``prog_fd`` (of type ``prog_type``) in network
    namespace ``netns``: attach :attr:`fd` where the program would be attached."""

    def __init__(self, prog_fd: int, prog_type: int, netns: int, name: str) -> None:
        self.map_fd = L.map_create(MAP_TYPE_PROG_ARRAY, "gadget_dispatch", 4, 4, 1)
        self.fd = -1
        try:
            key, value = ctypes.c_uint32(0), ctypes.c_uint32(prog_fd)
            L.check_int(L.lib().bpf_map_update_elem(self.map_fd, ctypes.byref(key),
                                                    ctypes.byref(value), 0),
                        f"putting program {name} in its dispatcher")
            insns = program(netns, self.map_fd)
            buf = ctypes.create_string_buffer(insns, len(insns))
            L.take_log()
            fd = L.lib().bpf_prog_load(prog_type, b"gadget_dispatch", b"GPL", buf,
                                       len(insns) // 8, None)
            if fd < 0:
                raise LibbpfError(f"loading the dispatcher of program {name}", L.errno_now(),
                                  L.take_log())
            self.fd = fd
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for fd in (self.fd, self.map_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.map_fd = -1


__all__ = ["Dispatcher", "netns_inode", "program"]
