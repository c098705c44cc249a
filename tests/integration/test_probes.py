"""Uprobes/uretprobes (by path and by library name) and socket filters on this kernel."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from ..conftest import run_gadget
from .test_buffers import build_object

pytestmark = pytest.mark.usefixtures("clang_available")

UPROBE_PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum probe_kind { ENTRY = 0, RETURN = 1 };

struct event {
    gadget_timestamp timestamp_raw;
    __u32 pid;
    enum probe_kind kind_raw;
    __s64 ret;
    gadget_comm comm[16];
};

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(calls, events, event);

static __always_inline int emit(void *ctx, enum probe_kind kind, __s64 ret)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct event *e;

    if (targ_tid && (__u32)bpf_get_current_pid_tgid() != targ_tid)
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->timestamp_raw = bpf_ktime_get_boot_ns();
    e->pid = pid;
    e->kind_raw = kind;
    e->ret = ret;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

SEC("uprobe/LIBC:getpid")
int BPF_KPROBE(getpid_entry)
{
    return emit(ctx, ENTRY, 0);
}

SEC("uretprobe/libc:getpid")
int BPF_KRETPROBE(getpid_return, int ret)
{
    return emit(ctx, RETURN, ret);
}

char LICENSE[] SEC("license") = "GPL";
"""

SOCKET_PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
    __u32 len;
    __u16 dport;
    __u8 payload[32];
};

const volatile __u16 port = 0;
GADGET_PARAM(port);

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(packets, events, event);

SEC("socket1")
int udp_to_port(struct __sk_buff *skb)
{
    __u16 eth_proto, dport;
    __u8 ihl_byte, l4;
    struct event *e;

    /* AF_PACKET raw sockets see the Ethernet header (all zero on loopback) */
    if (bpf_skb_load_bytes(skb, 12, &eth_proto, 2) || eth_proto != bpf_htons(0x0800))
        return 0;
    if (bpf_skb_load_bytes(skb, 14, &ihl_byte, 1) || bpf_skb_load_bytes(skb, 23, &l4, 1))
        return 0;
    if (l4 != 17)
        return 0;
    __u32 l4off = 14 + (ihl_byte & 0xf) * 4;
    if (bpf_skb_load_bytes(skb, l4off + 2, &dport, 2) || bpf_ntohs(dport) != port)
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->len = skb->len;
    e->dport = bpf_ntohs(dport);
    bpf_skb_load_bytes(skb, l4off + 8, e->payload, sizeof(e->payload));
    gadget_submit_buf(skb, &events, e, sizeof(*e));
    return 0; /* keep nothing in the raw socket's queue */
}

char LICENSE[] SEC("license") = "GPL";
"""


pytestmark = pytest.mark.usefixtures("root")


def _libc() -> str:
    return os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6") if os.path.exists(
        "/lib/x86_64-linux-gnu/libc.so.6") else ""


def test_library_names_resolve_to_real_paths() -> None:
    from gadgetsmith.runtime.errors import RuntimeGadgetError
    from gadgetsmith.runtime.probes.uprobes import parse_section, resolve_binary

    libc = resolve_binary("libc")
    assert os.path.isabs(libc) and os.path.isfile(libc) and "libc" in os.path.basename(libc)
    assert resolve_binary("c") == libc == resolve_binary("libc.so.6")
    assert resolve_binary("true") == os.path.realpath("/usr/bin/true")
    with pytest.raises(RuntimeGadgetError, match="no library or executable"):
        resolve_binary(f"libnothere{uuid.uuid4().hex[:6]}")
    t = parse_section("uretprobe//usr/lib/x86_64-linux-gnu/libc.so.6:malloc+0x10")
    assert (t.retprobe, t.target, t.symbol, t.offset) == (
        True, "/usr/lib/x86_64-linux-gnu/libc.so.6", "malloc", 16)
    with pytest.raises(RuntimeGadgetError, match="PATH:SYMBOL"):
        parse_section("uprobe/libc")


@pytest.mark.parametrize("target", ["path", "libname"])
def test_uprobe_and_uretprobe_on_libc(tmp_path: Path, target: str) -> None:
    from gadgetsmith.runtime import Gadget

    libc = _libc()
    if not libc:
        pytest.skip("not a Debian x86_64 libc layout")
    prog = UPROBE_PROGRAM.replace("LIBC", libc if target == "path" else "libc")
    obj = build_object(tmp_path, f"up{target}", prog)
    with Gadget(obj, params={"targ_tid": threading.get_native_id()}) as g:
        sections = {sec for _p, sec in g.loaded.programs.values()}
        assert any(s.startswith("uretprobe/libc:") for s in sections)
        for _ in range(3):
            os.getpid()
        evs = list(g.events(timeout=10, count=6))
    assert [e["kind"] for e in evs].count("ENTRY") == 3
    returns = [e for e in evs if e["kind"] == "RETURN"]
    assert len(returns) == 3 and all(e["ret"] == os.getpid() for e in returns)
    assert all(e["pid"] == os.getpid() for e in evs)


def test_uprobe_missing_symbol_is_named(tmp_path: Path) -> None:
    prog = UPROBE_PROGRAM.replace("LIBC:getpid", "libc:no_such_function_xyz")
    d = tmp_path / "upbad"
    d.mkdir()
    (d / "program.bpf.c").write_text(prog)
    res = run_gadget("run", str(d), "--host", "--timeout", "1", check=False)
    # as in ig: a warning naming the program, and the gadget runs without that probe
    assert res.returncode == 0, res
    line = next(x for x in res.stderr.splitlines() if "getpid_entry" in x)
    assert line.startswith("warning: ") and "uprobe/libc:no_such_function_xyz" in line
    assert "no symbol no_such_function_xyz" in line and "Traceback" not in res.stderr


def test_socket_filter_sees_host_packets(tmp_path: Path) -> None:
    from gadgetsmith.runtime import Gadget

    obj = build_object(tmp_path, "sockf", SOCKET_PROGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    marker = uuid.uuid4().hex.encode()
    try:
        with Gadget(obj, params={"port": port}) as g:
            assert g.loaded.sockets, "the socket filter is attached to a raw socket"
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(3):
                tx.sendto(marker, ("127.0.0.1", port))
            tx.close()
            evs = list(g.events(timeout=10, count=3))
            prog_ids = g.loaded.prog_ids()
    finally:
        rx.close()
    assert len(evs) == 3
    assert all(e["dport"] == port for e in evs)
    assert all(bytes(e["payload"]).startswith(marker) for e in evs)
    import subprocess
    import time

    # a closed socket releases its filter after an RCU grace period: allow a few seconds
    deadline = time.monotonic() + 20
    for pid in prog_ids:
        while True:
            r = subprocess.run(["bpftool", "prog", "show", "id", str(pid)], capture_output=True)
            if r.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.returncode != 0, f"socket filter program {pid} still loaded after close()"
