"""The runtime against this kernel: every sample gadget runs and reports real events."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from ..conftest import SAMPLES, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available")


pytestmark = pytest.mark.usefixtures("root")


@pytest.fixture(scope="module")
def rt_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("rt") / "store"
    for name in ("trace_open", "trace_exec", "trace_signal", "snapshot_process", "top_syscall"):
        run_gadget("build", str(SAMPLES / name), "-t", f"{name}:test", "--arch", "amd64",
                   store=store)
    return store


def gadget(ref: str, store: Path, **kw):
    from gadgetsmith.runtime import Gadget

    return Gadget(f"{ref}:test", store=store, **kw)


def test_trace_open_reports_path_comm_and_errno(rt_store: Path, tmp_path: Path) -> None:
    missing = f"/nonexistent-{uuid.uuid4().hex}"
    present = tmp_path / f"present-{uuid.uuid4().hex}"
    present.write_text("x")
    with gadget("trace_open", rt_store) as g:
        proc = subprocess.Popen(["cat", missing, str(present)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        proc.wait()
        seen = {}
        for ev in g.events(timeout=5):
            if ev["fname"] in (missing, str(present)):
                seen[ev["fname"]] = ev
            if len(seen) == 2:
                break
    assert set(seen) == {missing, str(present)}
    bad, good = seen[missing], seen[str(present)]
    assert bad["proc.comm"] == "cat" and bad["proc.pid"] == proc.pid
    assert bad["error"] == "ENOENT" and bad["error_raw"] == 2
    assert good["error"] == "" and good["fd"] >= 3
    assert good["flags"].startswith("O_RDONLY")
    assert good["proc.parent.pid"] == os.getpid()
    assert abs(good["timestamp_raw"] / 1e9 - time.time()) < 60


def test_param_filters_in_kernel(rt_store: Path) -> None:
    marker = f"/nonexistent-{uuid.uuid4().hex}"
    # only opens by a process named "head" reach user space
    with gadget("trace_open", rt_store, params={"comm": "head", "failed": "true"}) as g:
        subprocess.run(["cat", marker], capture_output=True)
        subprocess.run(["head", marker], capture_output=True)
        events = list(g.events(timeout=2))
    assert events, "expected events from head"
    assert {e["proc.comm"] for e in events} == {"head"}
    assert all(e["error"] for e in events), "failed=true keeps only failures"
    assert marker in {e["fname"] for e in events}


def test_user_space_filter(rt_store: Path) -> None:
    hexid = uuid.uuid4().hex
    marker = f"/nonexistent-{hexid}"
    # a regex unique to this test: other tests (running in parallel) open /nonexistent-* too
    with gadget("trace_open", rt_store, filter=f"fname~^/nonexist[a-z]+-{hexid[:16]},error==ENOENT") as g:
        subprocess.run(["cat", marker], capture_output=True)
        subprocess.run(["cat", "/etc/hostname"], capture_output=True)
        events = list(g.events(timeout=2))
    assert [e["fname"] for e in events] == [marker]


def test_bad_params_and_filters_fail_before_loading(rt_store: Path) -> None:
    from gadgetsmith.runtime.errors import FilterError, ParamError

    with pytest.raises(ParamError, match="out of range"):
        gadget("trace_open", rt_store, params={"pid": "-1"})
    with pytest.raises(ParamError, match="unknown param 'nope'"):
        gadget("trace_open", rt_store, params={"nope": "1"})
    with pytest.raises(FilterError, match="unknown field 'fnam'"):
        gadget("trace_open", rt_store, filter="fnam==x")
    res = run_gadget("run", "trace_open:test", "-p", "pid=abc", store=rt_store, check=False)
    # a param value that does not fit is bad input: exit 2 (it was 1, like a failure)
    assert res.returncode == 2 and "expected an integer" in res.stderr
    assert "Traceback" not in res.stderr


def test_trace_exec(rt_store: Path) -> None:
    arg = f"gs-{uuid.uuid4().hex[:8]}"
    with gadget("trace_exec", rt_store) as g:
        p = subprocess.run(["/bin/true", arg, "second"])
        assert p.returncode == 0
        found = [e for e in g.events(timeout=3) if arg in e["args"]]
    assert found, "exec event not seen"
    ev = found[0]
    assert ev["proc.comm"] == "true"
    assert ev["filename"] == "/bin/true"
    assert ev["args"] == f"/bin/true {arg} second" and ev["args_count"] == 3


def test_trace_signal(rt_store: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        with gadget("trace_signal", rt_store) as g:
            os.kill(child.pid, 10)  # SIGUSR1
            child.wait()
            missing_pid = 4_000_000  # above pid_max: kill fails with ESRCH
            with pytest.raises(ProcessLookupError):
                os.kill(missing_pid, 9)
            got, failed = None, None
            for ev in g.events(timeout=3):
                if ev["tpid"] == child.pid and ev["sig"] == "SIGUSR1":
                    got = ev
                if ev["tpid"] == missing_pid:
                    failed = ev
                if got and failed:
                    break
    finally:
        child.kill()
    assert got and got["proc.pid"] == os.getpid() and got["sig_raw"] == 10
    assert failed and failed["error"] == "ESRCH" and failed["sig"] == "SIGKILL"


def test_snapshot_process(rt_store: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        with gadget("snapshot_process", rt_store) as g:
            procs = g.snapshot()
    finally:
        child.kill()
    by_pid = {p["pid"]: p for p in procs}
    assert child.pid in by_pid and by_pid[child.pid]["comm"] == "sleep"
    assert by_pid[child.pid]["parent.pid"] == os.getpid()
    assert all(p["pid"] == p["tid"] for p in procs), "threads only with threads=true"
    me = by_pid[os.getpid()]
    assert me["mntns_id"] == os.stat(f"/proc/{os.getpid()}/ns/mnt").st_ino
    assert me["creds.uid"] == os.getuid()


def test_top_syscall_counts(rt_store: Path) -> None:
    with gadget("top_syscall", rt_store, params={"pid": str(os.getpid())}) as g:
        for _ in range(50):
            os.getppid()
        rows = g.drain()
        again = g.drain()  # drained: only the few syscalls made since the first drain
    assert not [r for r in again if r["syscall"] == "SYS_GETPPID"]
    assert rows and all(r["pid"] == os.getpid() for r in rows)
    getppid = [r for r in rows if r["syscall"] == "SYS_GETPPID"]
    assert getppid and getppid[0]["count"] >= 50


def _trace_failed_opens(store: Path, *args: str) -> subprocess.CompletedProcess:
    """`gadget run trace_open:test --host ARGS` filtered on a file that does not exist,
    while a failing cat opens it every 0.2 s: a trigger that does not depend on how long
    `gadget run` takes to start on a loaded machine."""
    marker = f"/nonexistent-{uuid.uuid4().hex}"
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.2):
            subprocess.run(["cat", marker], capture_output=True)

    threading.Thread(target=loop, daemon=True).start()
    try:
        return run_gadget("run", "trace_open:test", "--host", "--timeout", "60", *args,
                          "-F", f"fname=={marker}", store=store)
    finally:
        stop.set()


def test_cli_run_json_and_columns(rt_store: Path) -> None:
    res = _trace_failed_opens(rt_store, "--count", "3", "-o", "json")
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["proc"]["comm"] == "cat" and lines[0]["error"] == "ENOENT"
    res = run_gadget("run", "snapshot_process:test", "--host", "--fields", "comm,pid", "--sort=-pid",
                     store=rt_store)
    rows = res.stdout.splitlines()
    assert rows[0].split() == ["COMM", "PID"]
    pids = [int(r.split()[-1]) for r in rows[1:]]
    assert pids == sorted(pids, reverse=True) and len(pids) > 5


def test_run_from_source_directory() -> None:
    res = run_gadget("run", str(SAMPLES / "snapshot_process"), "--host", "-o", "json",
                     "-p", "comm=systemd")
    assert json.loads(res.stdout) == [] or all(
        r["comm"] == "systemd" for r in json.loads(res.stdout))


def test_nothing_stays_attached(rt_store: Path) -> None:
    with gadget("trace_open", rt_store) as g:
        ids = g.loaded.prog_ids()
        assert ids
    for pid in ids:
        r = subprocess.run(["bpftool", "prog", "show", "id", str(pid)], capture_output=True)
        assert r.returncode != 0, f"program {pid} still loaded after close()"


def test_kprobe_attach_failure_is_named(tmp_path: Path) -> None:
    d = tmp_path / "kp"
    d.mkdir()
    (d / "program.bpf.c").write_text(
        "#include <vmlinux.h>\n#include <bpf/bpf_helpers.h>\n#include <gadget/buffer.h>\n"
        "#include <gadget/macros.h>\n#include <gadget/types.h>\n"
        "struct event { gadget_timestamp timestamp_raw; };\n"
        "GADGET_TRACER_MAP(events, 4096);\nGADGET_TRACER(kp, events, event);\n"
        'SEC("kprobe/do_sys_openat2") int ig_kp(void *ctx) { return 0; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n')
    res = run_gadget("run", str(d), "--host", "--timeout", "1", check=False)
    assert res.returncode == 1, res
    line = res.stderr.strip().splitlines()[-1]
    assert "ig_kp" in line and "kprobe/do_sys_openat2" in line
    if not os.path.exists("/sys/kernel/tracing/kprobe_events"):
        assert "CONFIG_KPROBES" in line


def test_columns_show_the_process_not_its_parent(rt_store: Path) -> None:
    res = _trace_failed_opens(rt_store, "--count", "1", "--fields", "comm,pid,error,fname")
    rows = res.stdout.splitlines()
    assert rows[0].split() == ["COMM", "PID", "ERROR", "FNAME"]
    assert rows[1].split()[0] == "cat" and rows[1].split()[2] == "ENOENT"


def _bpf_fds(pid: int) -> tuple[set[int], set[int]]:
    """Program and link ids a process holds open (from /proc/PID/fdinfo)."""
    progs, links = set(), set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "prog_id":
                progs.add(int(value))
            elif key == "link_id":
                links.add(int(value))
    return progs, links


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_stops_run_and_detaches_everything(rt_store: Path, sig: str) -> None:
    import select
    import signal

    from ..conftest import GADGET

    env = dict(os.environ, GADGETSMITH_STORE=str(rt_store))
    proc = subprocess.Popen([GADGET, "run", "trace_open:test", "--host"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the header is printed once every program is attached
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "gadget run printed nothing in 120 s"
        assert b"COMM" in proc.stdout.readline().split()
        progs, links = _bpf_fds(proc.pid)
        assert len(progs) >= 4 and len(links) >= 4, (progs, links)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"error" not in err, err
    for pid in progs:
        r = subprocess.run(["bpftool", "prog", "show", "id", str(pid)], capture_output=True)
        assert r.returncode != 0, f"program {pid} still loaded after {sig}"
    shown = json.loads(subprocess.run(["bpftool", "link", "show", "-j"], capture_output=True,
                                      text=True, check=True).stdout or "[]")
    assert not [link for link in shown if link["id"] in links or link.get("prog_id") in progs]


@pytest.mark.parametrize("payload", [b"not an object at all", b"\x7fELF\x02\x01" + b"\0" * 40])
def test_unreadable_ebpf_layer_is_a_clear_error(tmp_path: Path, payload: bytes) -> None:
    from gadgetsmith.runtime.oci.reference import normalize
    from gadgetsmith.toolchain.oci.assemble import ArchContent, build_image
    from gadgetsmith.toolchain.oci.store import open_store

    content = {a: ArchContent(ebpf=payload) for a in ("amd64", "arm64")}
    img = build_image(b"name: broken\n", {"name": "broken"}, content, "2026-11-23T00:00:00Z")
    open_store(tmp_path).add_image(img.blobs, img.index_descriptor, normalize("broken:v1"))
    res = run_gadget("run", "broken:v1", "--host", "--timeout", "1", store=tmp_path, check=False)
    assert res.returncode == 1, res
    assert "eBPF object cannot be read" in res.stderr and "rebuild it" in res.stderr, res.stderr
    assert "unexpected error" not in res.stderr and "Traceback" not in res.stderr


PARAM_KINDS_PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
    __u32 pid;
    __u32 ratio_bits;
    __u64 scale_bits;
    __u32 peer_v4;
    __u32 peer6_tail;
    __u8 peer_version;
    __u8 peer6_version;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(kinds, events, event);

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);
const volatile float ratio = 0.5;
GADGET_PARAM(ratio);
const volatile double scale = 0;
GADGET_PARAM(scale);
const volatile struct gadget_l3endpoint_t peer = {};
GADGET_PARAM(peer);
const volatile struct gadget_l3endpoint_t peer6 = {};
GADGET_PARAM(peer6);
struct cfg { __u32 a; };
const volatile struct cfg cfg = {};
GADGET_PARAM(cfg);

SEC("tracepoint/syscalls/sys_enter_getpid")
int kinds_enter(void *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    if (targ_tid && (__u32)id != targ_tid)
        return 0;
    struct event *e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->pid = id >> 32;
    e->ratio_bits = *(const volatile __u32 *)&ratio;
    e->scale_bits = *(const volatile __u64 *)&scale;
    e->peer_v4 = peer.addr_raw.v4;
    e->peer_version = peer.version;
    e->peer6_tail = *(const volatile __u32 *)&peer6.addr_raw.v6[12];
    e->peer6_version = peer6.version;
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def kinds_obj(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.compile import compile_arches, find_toolchain

    d = tmp_path_factory.mktemp("kinds")
    (d / "program.bpf.c").write_text(PARAM_KINDS_PROGRAM)
    objs = compile_arches(d / "program.bpf.c", [host_arch()], d, find_toolchain(), cwd=d)
    return objs[host_arch()].read_bytes()


def test_float_and_ip_params_reach_the_kernel(kinds_obj: bytes) -> None:
    """The params `gadget validate` accepts are the ones the runtime sets: floats and
    gadget_l3endpoint_t addresses are written into .rodata as ig writes them."""
    import ipaddress
    import struct

    from gadgetsmith.runtime import Gadget

    params = {"targ_tid": threading.get_native_id(), "ratio": "1.5", "scale": "-2.25",
              "peer": "10.1.2.3", "peer6": "2001:db8::7"}
    with Gadget(kinds_obj, params=params) as g:
        for _ in range(3):
            os.getpid()  # one syscall each (glibc does not cache it)
        ev = next(iter(g.events(timeout=5, count=1)))
    assert ev["pid"] == os.getpid()
    assert ev["ratio_bits"] == struct.unpack("<I", struct.pack("<f", 1.5))[0]
    assert ev["scale_bits"] == struct.unpack("<Q", struct.pack("<d", -2.25))[0]
    assert ev["peer_version"] == 4
    assert ev["peer_v4"] == int.from_bytes(ipaddress.ip_address("10.1.2.3").packed, "little")
    assert ev["peer6_version"] == 6
    assert ev["peer6_tail"] == int.from_bytes(ipaddress.ip_address("2001:db8::7").packed[12:],
                                              "little")


def test_param_values_and_types_the_runtime_refuses(kinds_obj: bytes) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import ParamError

    for params, needle in (({"ratio": "half"}, "--param ratio=half: expected a number"),
                           ({"ratio": "1e39"}, "out of range for float32"),
                           ({"peer": "10.1.2"}, "expected an IPv4 or IPv6 address"),
                           ({"cfg": "1"}, "param 'cfg' cannot be set: its C type struct cfg "
                                          "cannot be a param")):
        with pytest.raises(ParamError, match=re.escape(needle)):
            Gadget(kinds_obj, params=params)
