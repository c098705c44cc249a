"""The runtime against what IG's gadgets need from it (issue 14, points 5 to 7), with
gadgets of our own in tests/c/igrt/: fields formatted as ig formats them, the program
kinds IG supports, and load failures that explain themselves.

Each test gadget is compiled once per test run, for amd64 and arm64 (``objects``), and
loaded and run on this kernel as root; the assertions are on what a user sees.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gadgetsmith.toolchain.build.compile import compile_arches

from ..conftest import gadget_popen, load_yaml, need_root, need_tool, run_gadget, wait_attached

HERE = Path(__file__).resolve().parent.parent  # tests/
SRC = HERE / "c" / "igrt"
ARCHES = ("amd64", "arm64")
GADGETS = sorted(p.name.removesuffix(".bpf.c") for p in SRC.glob("*.bpf.c"))
pytestmark = pytest.mark.usefixtures("clang_available")


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Every gadget of tests/c/igrt, compiled for both arches: {name: {arch: object}}."""
    out = tmp_path_factory.mktemp("igrt-objs")

    def build(name: str) -> tuple[str, dict[str, Path]]:
        return name, compile_arches(SRC / f"{name}.bpf.c", ARCHES, out / name, cwd=SRC)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(build, GADGETS))


def metadata(name: str) -> dict:
    """tests/c/igrt/NAME.yaml (the gadget.yaml of that gadget), or nothing."""
    path = SRC / f"{name}.yaml"
    return load_yaml(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("name", GADGETS)
def test_each_gadget_builds_for_both_arches(objects: dict, name: str) -> None:
    assert set(objects[name]) == set(ARCHES)
    for obj in objects[name].values():
        assert obj.read_bytes()[:4] == b"\x7fELF"


# -- point 7: load failures explain themselves ----------------------------------------------------
def test_verifier_rejection_names_program_section_and_reason(objects: dict) -> None:
    """The program, its section, the errno and the verifier's own words, then its last
    lines (not the whole log, which --debug prints)."""
    need_root()
    obj = objects["rejected"]["amd64"]
    res = run_gadget("run", str(obj), "--host", "--timeout", "1", check=False)
    assert res.returncode == 1, res
    first, *rest = res.stderr.strip().splitlines()
    assert first.startswith("error: program out_of_bounds (tracepoint/syscalls/sys_enter_getpgid) "
                            "cannot be loaded: EACCES: invalid access to map value, value_size=16 "
                            "off=31 size=1"), first
    assert rest[0] == "  verifier log, last lines (--debug prints all of it):"
    shown = [line.strip() for line in rest[1:]]
    assert 1 <= len(shown) <= 8 and "invalid access to map value, value_size=16 off=31 size=1" in shown
    assert any(re.match(r"\d+: \(73\) \*\(u8 \*\)\(r\d \+0\) = r\d", line) for line in shown), shown
    assert not any(line.startswith("processed ") for line in shown)
    assert "Traceback" not in res.stderr

    debug = run_gadget("--debug", "run", str(obj), "--host", "--timeout", "1", check=False)
    assert debug.returncode == 1
    log = debug.stderr.split("debug: verifier log of program out_of_bounds "
                             "(tracepoint/syscalls/sys_enter_getpgid):\n", 1)[1]
    # the whole log: from the program's first instruction to the verifier's summary
    assert re.search(r"^0: R1=ctx\(\)", log, re.M) and re.search(r"^processed \d+ insns", log, re.M)


def test_core_relocation_failure_points_to_gadget_check(objects: dict) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import ProgramError

    need_root()
    with pytest.raises(ProgramError) as err:
        Gadget(objects["unrelocatable"]["amd64"])
    e = err.value
    assert (e.program, e.section) == ("reads_missing", "tracepoint/syscalls/sys_enter_getppid")
    assert str(e).startswith("program reads_missing (tracepoint/syscalls/sys_enter_getppid) cannot "
                             "be loaded: CO-RE relocation ")
    assert "struct gadgetsmith_no_such_struct.member" in str(e)
    assert "'gadget check IMAGE --kernels /sys/kernel/btf/vmlinux'" in str(e)
    assert "\n" not in str(e)


def test_map_element_iterator_refusal_names_errno_and_macro(objects: dict) -> None:
    """GADGET_ITER_TARGET_MAP (iter/bpf_map_elem): this kernel refuses the program with
    EPERM before the verifier reads an instruction; one line says so by name."""
    need_root()
    res = run_gadget("run", str(objects["mapelem_iter"]["amd64"]), "--host", "--timeout", "1",
                     check=False)
    assert res.returncode == 1, res
    assert res.stderr.strip().splitlines() == [
        "error: program dump_levels (iter/bpf_map_elem) cannot be loaded: EPERM before the "
        "verifier read an instruction: this kernel does not allow map-element iterators "
        "(iter/bpf_map_elem, IG's GADGET_ITER_TARGET_MAP)"]


# -- point 6: a uprobe whose library is not installed -----------------------------------------------
def test_uprobe_on_a_missing_library_is_a_warning(objects: dict) -> None:
    """Missing library, missing symbol: one warning each; the tracepoint and the uprobe
    that found its target still deliver events (as ig, which runs trace_ssl here)."""
    from gadgetsmith.runtime import Gadget

    need_root()
    libc = ctypes.CDLL(None, use_errno=True)
    warnings: list[str] = []
    with Gadget(objects["optional_uprobes"]["amd64"], params={"tid": threading.get_native_id()},
                on_warning=warnings.append) as g:
        for _ in range(3):
            libc.getppid()
        evs = list(g.events(timeout=10, count=6))
    assert sorted(e["source"] for e in evs) == ["FROM_TRACEPOINT"] * 3 + ["FROM_UPROBE"] * 3
    assert all(e["proc.pid"] == os.getpid() for e in evs)
    assert len(warnings) == 2, warnings
    assert any(w.startswith("program on_absent_library (uprobe/libgadgetsmith_not_installed:"
                            "gs_function) is not attached on this host: target "
                            "'libgadgetsmith_not_installed': no library or executable") for w in warnings)
    assert any("on_absent_symbol" in w and "no symbol gadgetsmith_no_such_symbol in" in w
               for w in warnings)


# -- point 5: what ig's formatters derive ----------------------------------------------------------
def _connect_while(proc, *addrs: tuple[str, int]) -> threading.Thread:
    """Connect to each of ``addrs`` every 0.3 s until ``proc`` ends (a trigger for a
    gadget run in another process, whatever time it takes to start)."""
    def loop() -> None:
        while proc.poll() is None:
            for host, port in addrs:
                with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
                    pass
            time.sleep(0.3)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


@pytest.fixture
def listeners():
    """A TCP listener on 127.0.0.1 and one on ::1: their ports."""
    v4 = socket.create_server(("127.0.0.1", 0))
    v6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
    try:
        yield v4.getsockname()[1], v6.getsockname()[1]
    finally:
        v4.close()
        v6.close()


def test_endpoints_are_addresses_ports_and_protocols(objects: dict, listeners) -> None:
    """l4 endpoints: addr, port, proto (proto_raw, version kept) and no addr_raw, as ig's
    JSON; an l3 endpoint: addr and version. IPv4 and IPv6."""
    need_root()
    port4, port6 = listeners
    obj = str(objects["endpoints"]["amd64"])
    proc = gadget_popen("run", obj, "--host", "-o", "json", "--timeout", "8",
                       "-F", "newstate==1")
    _connect_while(proc, ("127.0.0.1", port4), ("::1", port6))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    v4 = next(e for e in events if e["dst"]["port"] == port4)
    v6 = next(e for e in events if e["dst"]["port"] == port6)
    assert v4["dst"] == {"addr": "127.0.0.1", "port": port4, "proto": "TCP", "proto_raw": 6,
                         "version": 4}
    assert v4["src"]["addr"] == "127.0.0.1" and v4["src"]["port"] > 0
    assert v4["peer"] == {"addr": "127.0.0.1", "version": 4}
    assert v6["dst"] == {"addr": "::1", "port": port6, "proto": "TCP", "proto_raw": 6, "version": 6}
    assert v6["peer"] == {"addr": "::1", "version": 6}
    assert all("addr_raw" not in e["src"] and "endpoint" not in e["src"] for e in events)


def test_endpoint_column_is_addr_port(objects: dict, listeners) -> None:
    """In columns, an l4 endpoint is one column 'addr:port' (ig's P.endpoint), an l3
    endpoint its address; --fields takes the endpoint's name."""
    need_root()
    port4, _ = listeners
    proc = gadget_popen("run", str(objects["endpoints"]["amd64"]), "--host", "--timeout", "8",
                       "-F", f"dst.port=={port4},newstate==1", "--fields", "src,dst,peer")
    _connect_while(proc, ("127.0.0.1", port4))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["SRC", "DST", "PEER"]
    assert rows and all(re.fullmatch(rf"127\.0\.0\.1:\d+ +127\.0\.0\.1:{port4} +127\.0\.0\.1", r)
                        for r in rows), rows


def test_kernel_stack_is_symbolized(objects: dict, listeners) -> None:
    """gadget_kernel_stack kstack_raw -> kstack: the functions of the kernel stack from
    /proc/kallsyms, each followed by '; ', innermost first."""
    from gadgetsmith.runtime import Gadget

    need_root()
    port4, _ = listeners
    with Gadget(objects["endpoints"]["amd64"], params={"tid": threading.get_native_id()},
                filter=f"dst.port=={port4}") as g:
        socket.create_connection(("127.0.0.1", port4)).close()
        evs = list(g.events(timeout=5))
    syn = next(e for e in evs if e["newstate"] == 2)  # TCP_SYN_SENT, in connect()
    frames = syn["kstack"].split("; ")
    assert syn["kstack"].endswith("; ") and frames[-1] == ""
    assert "tcp_v4_connect" in frames and "__sys_connect" in frames, frames
    assert frames.index("tcp_v4_connect") < frames.index("__sys_connect")
    assert isinstance(syn["kstack_raw"], int)


# -- point 6: perf_event programs; point 5: user stacks ------------------------------------------------
@pytest.fixture(scope="session")
def spinner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """tests/c/igrt/spin.c and the library it may call (spinlib.c), built with symbols."""
    out = tmp_path_factory.mktemp("igrt-spin")
    clang = need_tool("clang-19") if shutil.which("clang-19") else need_tool("clang")
    exe, lib = out / "spin", out / "libgsspin.so"
    subprocess.run([clang, "-O1", "-g", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", str(exe),
                    str(SRC / "spin.c"), "-ldl"], check=True)
    subprocess.run([clang, "-O1", "-g", "-fPIC", "-shared", "-fno-omit-frame-pointer",
                    "-Wl,--build-id", "-o", str(lib), str(SRC / "spinlib.c")], check=True)
    return exe, lib


def _build_id(path: Path) -> str:
    out = subprocess.run([need_tool("readelf"), "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


PERF_LINKS: list[int] = []  # links of the last sampler run's perf_event program


def _samples(obj: Path, cmd: list[str], seconds: float = 2.0, **params: str) -> tuple[list[dict], str]:
    """Run ``cmd`` under the sampler gadget for ``seconds``; its samples (drained while it
    still runs, so its /proc is there) and its /proc/PID/maps."""
    from gadgetsmith.runtime import Gadget

    # started, and past its exec, before the sampler attaches: a sample taken between fork
    # and exec is the same pid with the parent's comm
    proc = subprocess.Popen(cmd)
    try:
        exe_name = Path(cmd[0]).name[:15]
        deadline = time.monotonic() + 60
        while Path(f"/proc/{proc.pid}/comm").read_text().strip() != exe_name:
            assert time.monotonic() < deadline and proc.poll() is None, f"{cmd[0]} did not start"
            time.sleep(0.01)
        with Gadget(obj, metadata=metadata("sampler"), params=params) as g:
            PERF_LINKS[:] = g.loaded.handles["sample"].links
            time.sleep(seconds)
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            evs = [e for e in g.drain() if e["proc.pid"] == proc.pid]
    finally:
        proc.kill()
        proc.wait()
    return evs, maps


def _file_offset(maps: str, addr: int, path: Path) -> int:
    for line in maps.splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if len(parts) >= 6 and parts[5] == str(path) and lo <= addr < hi:
            return addr - lo + int(parts[2], 16)
    raise AssertionError(f"{addr:#x} is not in {path}")


def test_perf_event_program_samples_every_cpu(objects: dict, spinner) -> None:
    """perf_event/NAME with gadget.yaml's programs.NAME (software CPU clock, raw samples,
    a frequency), one event per online CPU; user stacks symbolized from the executable's
    ELF symbols, as ig's ustack operator (addresses, symbols)."""
    need_root()
    exe, _lib = spinner
    evs, _maps = _samples(objects["sampler"]["amd64"], [str(exe), "30"], **{"collect-ustack": "true"})
    from gadgetsmith.runtime.bpf.perf_event import online_cpus

    assert len(PERF_LINKS) == len(online_cpus()) >= 1
    total = sum(e["samples"] for e in evs)
    assert total >= 20, evs  # 199 Hz for 2 s, of whatever CPU time a busy machine gives it
    assert {e["proc.comm"] for e in evs} == {"spin"}
    top = max(evs, key=lambda e: e["samples"])
    assert top["user_stack.symbols"].startswith("gadgetsmith_spin_inner; gadgetsmith_spin; main; "), top
    addrs = top["user_stack.addresses"].split("; ")
    assert addrs[-1] == "" and all(re.fullmatch(r"0x[0-9a-f]{16}", a) for a in addrs[:-1])
    assert len(addrs) - 1 == len(top["user_stack.symbols"].split("; ")) - 1
    assert top["user_stack.buildid"] == ""  # not asked for (collect-build-id)
    for e in evs:  # a sample taken in the kernel has its kernel stack
        assert e["kern_stack"] == "" or e["kern_stack"].endswith("; ")


def test_user_stack_through_a_library_with_build_ids(objects: dict, spinner) -> None:
    """A frame in a shared library gets that library's function; with collect-build-id,
    each frame is '<build id> +<file offset>' of the file mapped there."""
    need_root()
    exe, lib = spinner
    evs, maps = _samples(objects["sampler"]["amd64"], [str(exe), "30", str(lib)],
                         **{"collect-ustack": "true", "collect-build-id": "true"})
    # samples whose user stack the kernel did not capture (a stack map bucket another
    # process's stack holds: -EEXIST, common while a whole test suite runs) count under
    # their own key, with no stack: the symbols are checked on the captured ones
    captured = [e for e in evs if e["user_stack.addresses"]]
    assert captured, evs
    top = max(captured, key=lambda e: e["samples"])
    assert top["user_stack.symbols"].startswith("gadgetsmith_lib_spin; gadgetsmith_spin; main; "), top
    first, second = (int(a, 16) for a in top["user_stack.addresses"].split("; ")[:2])
    frames = top["user_stack.buildid"].split("; ")
    assert frames[0] == f"{_build_id(lib)} +{_file_offset(maps, first, lib):x}"
    assert frames[1] == f"{_build_id(exe)} +{_file_offset(maps, second, exe):x}"


def test_user_stack_fields_are_empty_when_not_collected(objects: dict, spinner) -> None:
    need_root()
    exe, _lib = spinner
    evs, _maps = _samples(objects["sampler"]["amd64"], [str(exe), "30"], seconds=1)
    assert evs and all((e["user_stack.addresses"], e["user_stack.symbols"], e["user_stack.buildid"])
                       == ("", "", "") for e in evs)


def test_perf_event_program_without_its_gadget_yaml_says_which_key(objects: dict) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import RuntimeGadgetError

    need_root()
    meta = metadata("sampler")
    del meta["programs"]["sampler"]["sampler"]
    with pytest.raises(RuntimeGadgetError) as err:
        Gadget(objects["sampler"]["amd64"], metadata=meta)
    assert str(err.value) == ("program sample (perf_event/sampler) cannot attach: gadget.yaml: "
                              "programs.sampler.sampler.frequency is not set (ig's perf_event "
                              "programs need perf.type, perf.config, perf.sampleType and "
                              "sampler.frequency)")


def test_map_is_flushed_on_stop(objects: dict, spinner) -> None:
    """ebpf.map.flush-on-stop: a stop before the first round still prints what the map
    holds (one last drain), as ig does for profile_cpu."""
    from gadgetsmith.runtime import Gadget

    need_root()
    exe, _lib = spinner
    batches = []
    proc = subprocess.Popen([str(exe), "30"])
    try:
        with Gadget(objects["sampler"]["amd64"], metadata=metadata("sampler"),
                    params={"pid": proc.pid}) as g:
            threading.Timer(1.5, g.stop).start()
            g.run(batches.append, interval=60)
    finally:
        proc.kill()
        proc.wait()
    assert len(batches) == 1 and sum(e["samples"] for e in batches[0].events) > 0


def test_enums_anonymous_members_pointers_floats_as_ig(objects: dict) -> None:
    """ig's decoding: an enum's name in ``x`` for ``x_raw`` or in the field the
    ebpf.formatter.enum annotation names, a ``_set`` enum's names joined by the separator
    annotation, any other enum the number only; an anonymous struct/union member is a
    field with an empty name; a pointer is no field; a float32 is its shortest text."""
    from gadgetsmith.runtime import Gadget

    need_root()
    with Gadget(objects["decoded"]["amd64"], metadata=metadata("decoded"),
                params={"targ_tid": threading.get_native_id()}) as g:
        os.getpid()
        [ev] = list(g.events(timeout=10, count=1))
    assert (ev["level_raw"], ev["level"], ev["grade"], ev["grade_name"]) == (2, "DC_HIGH", 1, "DC_LOW")
    assert (ev["mode_raw"], ev["mode"], ev["bare"]) == (5, "DC_R+DC_X", 2)
    assert not {"bare_str", "grade_str", "where"} & set(ev)
    assert (ev["box.tag"], ev["box..word"], ev["box..bytes"], ev[".depth"]) == (7, 0x01020304,
                                                                               [4, 3, 2, 1], 3)
    assert (ev["whole"], ev["tenth"], ev["tiny"], ev["huge"]) == (1500.0, 0.1, 1e-7, 1e16)
    assert ev["seq"] == 1  # json.skip is the JSON printer's


def test_json_line_is_igs(objects: dict, tmp_path: Path) -> None:
    """`gadget run -o json` writes the line ig writes: compact, keys sorted, an anonymous
    member under "", integral floats without a fraction, Go's exponent form; a field
    annotated json.skip left out (profile_cpu's user_stack_id)."""
    need_root()
    src = tmp_path / "decoded"
    src.mkdir()
    shutil.copy(SRC / "decoded.bpf.c", src / "program.bpf.c")
    shutil.copy(SRC / "decoded.yaml", src / "gadget.yaml")
    store = tmp_path / "store"
    run_gadget("build", str(src), "-t", "decoded:test", "--arch", "amd64", store=store)
    child = subprocess.Popen(["python3", "-c", "import os, time\nfor _ in range(300):\n"
                              "    os.getpid()\n    time.sleep(0.05)"])
    try:
        res = run_gadget("run", "decoded:test", "--host", "-o", "json", "--count", "1",
                         "--timeout", "20", "-p", f"targ_tid={child.pid}", store=store)
    finally:
        child.kill()
        child.wait()
    assert res.stdout == (
        '{"":{"depth":3},"bare":2,"box":{"":{"bytes":[4,3,2,1],"word":16909060},"tag":7},'
        '"grade":1,"grade_name":"DC_LOW","huge":10000000000000000,"level":"DC_HIGH",'
        '"level_raw":2,"mode":"DC_R+DC_X","mode_raw":5,"tenth":0.1,"tiny":1e-7,'
        '"whole":1500}\n')



def _histo_text(slot: int, count: int) -> str:
    rows = [f"{'':8}{'µs':<16} : count    distribution"]
    for i in range(8):
        n = count if i == slot else 0
        bar = "*" * 40 if n else " " * 40
        rows.append(f"{0 if i == 0 else 1 << (i - 1):>10} -> {1 << i:<10} : {n:<8} |{bar}|")
    return "\n".join(rows) + "\n\n"


def _metrics_run(tmp_path: Path, name: str, seconds: int, syscalls: str) -> str:
    """Build the test gadget ``name`` (SRC/NAME.bpf.c and NAME.yaml), run it for ``seconds``
    on a child's thread (targ_tid) that makes ``syscalls`` (Python lines) once the gadget has
    attached (a loaded machine may take seconds to start it), then idles until it is
    killed; what the run printed."""
    src, store, ref = tmp_path / name, tmp_path / "store", f"{name}:test"
    src.mkdir()
    shutil.copy(SRC / f"{name}.bpf.c", src / "program.bpf.c")
    shutil.copy(SRC / f"{name}.yaml", src / "gadget.yaml")
    run_gadget("build", str(src), "-t", ref, "--arch", "amd64", store=store)
    child = subprocess.Popen(["python3", "-c", "import os, sys, time\nsys.stdin.readline()\n"
                              + syscalls + "time.sleep(60)"], stdin=subprocess.PIPE, text=True)
    try:
        proc = gadget_popen("run", ref, "--host", "--timeout", str(seconds), "-p",
                            f"targ_tid={child.pid}", store=store)
        wait_attached(proc)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = proc.communicate(timeout=120)
    finally:
        child.kill()
        child.wait()
    assert proc.returncode == 0, err
    return out


def test_histogram_is_printed_as_ig_prints_it(objects: dict, tmp_path: Path) -> None:
    """metrics.print: the histogram slots summed over the run per metrics key (not per
    other field), printed after every round as ig's text: the metric's name, the unit,
    one 'start -> end : count |stars|' line per slot."""
    need_root()
    out = _metrics_run(tmp_path, "histo", 5,
                       "for _ in range(5): os.getpid()\nos.getppid(); os.getppid()\n")
    blocks = out.split("syscall_latency\n")
    assert blocks[0] == "" and len(blocks) >= 2, out
    assert blocks[-1] == _histo_text(3, 5) + _histo_text(1, 2), out


def test_counters_and_gauges_are_printed_as_ig_prints_them(objects: dict, tmp_path: Path) -> None:
    """metrics.print with counters and gauges (gadget_counter__u32, gadget_gauge__u64 and
    the implicit counter of the events): ig's printer writes each metric's name, in
    field order after the implicit counter, and no value (it renders histograms only);
    the events themselves and the field that is no metric are not printed."""
    need_root()
    out = _metrics_run(tmp_path, "counters", 4,
                       "for _ in range(3):\n    os.getpgid(0)\n")
    assert out
    assert set(out.split("getpgid_calls\n")) == {"", "calls\nlast_level\n"}, out


@pytest.fixture
def veth_netns():
    """A network namespace joined to this one by a veth pair: (host-side interface, its
    address, the namespace's name, the address inside)."""
    need_root()
    need_tool("ip")
    tag = os.urandom(3).hex()
    ns, host_if, peer_if = f"igrt-{tag}", f"igt{tag}a", f"igt{tag}b"
    net = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        ip("link", "set", peer_if, "netns", ns)
        ip("addr", "add", f"{net}.1/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{net}.2/24", "dev", peer_if)
        ip("-n", ns, "link", "set", peer_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield host_if, f"{net}.1", ns, f"{net}.2"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_tc_classifiers_on_a_veth_interface(objects: dict, veth_netns) -> None:
    """classifier/ingress and classifier/egress programs on the interface -p iface names:
    both directions seen, ingress drops what the program says, the clsact qdisc this run
    made is gone afterwards."""
    from gadgetsmith.runtime import Gadget

    host_if, host_ip, ns, peer_ip = veth_netns
    receivers = {}
    for port in (9998, 9999):
        receivers[port] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receivers[port].bind((host_ip, port))
        receivers[port].settimeout(2)
    sender = ("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              f"for _ in range(3):\n    s.sendto(b'x' * 20, ('{host_ip}', 9998))\n"
              f"    s.sendto(b'y' * 20, ('{host_ip}', 9999))\n    time.sleep(0.2)\n")
    try:
        with Gadget(objects["tcwatch"]["amd64"], params={"iface": host_if, "drop_port": "9999"}) as g:
            qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", host_if], capture_output=True,
                                    text=True).stdout
            subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", sender], check=True)
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            out.sendto(b"z", (peer_ip, 7777))
            out.close()
            got = receivers[9998].recv(100)
            with pytest.raises(TimeoutError):
                receivers[9999].recv(100)
            evs = list(g.events(timeout=10, count=7))
    finally:
        for r in receivers.values():
            r.close()
    assert "clsact" in qdiscs and got == b"x" * 20
    ifindex = socket.if_nametoindex(host_if)
    ingress = [(e["dport"], e["dropped"]) for e in evs if not e["egress"]]
    assert ingress.count((9998, False)) == 3 and ingress.count((9999, True)) == 3
    assert [e["dport"] for e in evs if e["egress"]] == [7777]
    assert all(e["ifindex"] == ifindex and e["len"] == 14 + 20 + 8 + 20 for e in evs if e["dport"] != 7777)
    after = subprocess.run(["tc", "qdisc", "show", "dev", host_if], capture_output=True, text=True)
    assert "clsact" not in after.stdout


def test_tc_classifier_interface_errors(objects: dict) -> None:
    """An interface that does not exist is one line naming the program and the param;
    without iface the classifiers are not attached, with a warning (the run goes on)."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import RuntimeGadgetError

    need_root()
    with pytest.raises(RuntimeGadgetError) as err:
        Gadget(objects["tcwatch"]["amd64"], params={"iface": "nosuchif0"})
    assert str(err.value) == ("program watch_in (classifier/ingress/watch_in) cannot attach: "
                              "iface='nosuchif0': no such network interface here ('ip link' "
                              "lists them)")
    warnings: list[str] = []
    with Gadget(objects["tcwatch"]["amd64"], on_warning=warnings.append):
        pass
    assert sorted(warnings) == [
        f"program {p} (classifier/{d}/{p}) is not attached: no interface: give one with "
        "-p iface=NAME (without --host, each container's is used)"
        for p, d in (("watch_in", "ingress"), ("watch_out", "egress"))]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    from ..podman_util import Podman

    p = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield p
    finally:
        p.cleanup()


def _host_end(pid: int) -> str:
    """The host end of the container's eth0 (its iflink is the host interface's index)."""
    iflink = int(Path(f"/proc/{pid}/root/sys/class/net/eth0/iflink").read_text())
    return socket.if_indextoname(iflink)


def test_tc_classifiers_without_iface_attach_to_each_container(objects: dict, podman) -> None:
    """As ig without iface: each container's veth gets the classifiers on its host end,
    turned around (the container's egress is the host end's ingress); what a container
    sends is seen by the egress program, what it receives by the ingress one, drops
    included; a container started later gets them too, and its interface loses them
    when it goes."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.containers.collection import ContainerCollection, PodmanSource

    first = podman.start("sleep", "1000")
    host_if = _host_end(podman.pid(first))
    gateway = podman.run("exec", first, "ip", "route").stdout.split()[2]  # "default via GW"
    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    send = "timeout 2 tftp -g -r f -l /dev/null {} {}"  # busybox's UDP client: an RRQ, resent
    with Gadget(objects["tcwatch"]["amd64"], host=False, containers=coll,
                params={"drop_port": "9999"}) as g:
        assert host_if in g.ctx.loaded_gadget().container_tc.interfaces()  # others' too
        podman.run("exec", first, "sh", "-c", send.format(gateway, 9998), check=False)
        peer = podman.inspect(first, "{{.NetworkSettings.IPAddress}}")
        index = socket.if_nametoindex(host_if)
        evs: list[dict] = []
        want = {(9998, True), (7777, False), (9999, False)}
        deadline = time.monotonic() + 60
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            while not want <= {(x["dport"], x["egress"]) for x in evs}:
                assert time.monotonic() < deadline, evs
                for port in (7777, 9999):  # again each round: a datagram may be lost
                    out.sendto(b"z" * 20, (peer, port))
                evs += [e for e in g.events(timeout=1)
                        if e["ifindex"] == index and e["dport"] in (9998, 7777, 9999)]
        late = podman.start("sleep", "1000")
        late_if = _host_end(podman.pid(late))
        deadline = time.monotonic() + 30
        while late_if not in g.ctx.loaded_gadget().container_tc.interfaces():
            assert time.monotonic() < deadline, "the later container got no classifiers"
            time.sleep(0.2)
        podman.run("rm", "-f", "-t", "0", late)
        while late_if in g.ctx.loaded_gadget().container_tc.interfaces():
            assert time.monotonic() < deadline, "the removed container's classifiers stayed"
            time.sleep(0.2)
    assert sorted(set((e["dport"], e["egress"], e["dropped"]) for e in evs)) == [
        (7777, False, False), (9998, True, False), (9999, False, True)]
    qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", host_if], capture_output=True,
                            text=True).stdout
    assert "clsact" not in qdiscs


def test_socket_enricher_names_the_owner_of_a_socket(objects: dict) -> None:
    """gadget_sockets, as IG's socket enricher fills it: a TCP server started before the
    gadget (found by the first scan) and one started while it runs (found by the scan
    that the SDK lookup's miss asks for, not by a timer); the connections' state changes
    of their ports carry the server process's pid, comm, parent and mount namespace."""
    from gadgetsmith.runtime import Gadget

    need_root()
    code = ("import socket, sys, time\n"
            "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
            "print(s.getsockname()[1], flush=True)\ns.settimeout(20)\n"
            "while True:\n    c, _ = s.accept()\n    c.close()\n")

    def server(port: int = 0) -> tuple[subprocess.Popen, int]:
        p = subprocess.Popen(["python3", "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        return p, int(p.stdout.readline())

    def connect(port: int) -> None:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port2 = free.getsockname()[1]
    before, port1 = server()
    later = None
    try:
        with Gadget(objects["sockowner"]["amd64"], params={"port": str(port1)}) as g:
            connect(port1)
            first = list(g.events(timeout=10, count=1))
        debug: list[str] = []
        with Gadget(objects["sockowner"]["amd64"], params={"port": str(port2)},
                    on_debug=debug.append) as g:
            later, _ = server(port2)
            second = []
            deadline = time.monotonic() + 30
            while not second and time.monotonic() < deadline:  # its listen() missed
                connect(port2)
                second = [e for e in g.events(timeout=1) if e["known"]][:1]
        assert second, "no connection to the later server found its owner"
        assert any(re.fullmatch(r"socket enricher: scanned for \d+ socket\(s\) lookups "
                                r"missed, [1-9]\d* found", d) for d in debug), debug
    finally:
        for p in (before, later):
            if p is not None:
                p.kill()
                p.wait()
    mntns = os.stat(f"/proc/{os.getpid()}/ns/mnt").st_ino
    for ev, proc in ((first[0], before), (second[0], later)):
        assert ev["known"] and ev["proc.pid"] == proc.pid == ev["proc.tid"], ev
        assert (ev["proc.comm"], ev["proc.parent.pid"], ev["proc.mntns_id"]) == \
            ("python3", os.getpid(), mntns)
        assert ev["proc.parent.comm"] == Path(f"/proc/{os.getpid()}/comm").read_text().strip()
        assert ev["netns_id"] == os.stat(f"/proc/{os.getpid()}/ns/net").st_ino


def test_socket_filter_finds_the_sender_through_the_dispatcher(objects: dict) -> None:
    """A socket filter's lookup by packet (trace_dns's): the dispatcher gives it this
    network namespace in skb->cb[0], the enricher the socket's owner: the process that
    sent the datagram, found by its source port (the first datagrams of a socket made
    after the gadget started miss it: their misses make the enricher scan)."""
    from gadgetsmith.runtime import Gadget

    need_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        code = ("import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "s.bind(('127.0.0.1', 0))\nprint(s.getsockname()[1], flush=True)\n"
                "for _ in sys.stdin:\n"
                f"    s.sendto(b'hi', ('127.0.0.1', {port}))\n")
        with Gadget(objects["pktowner"]["amd64"], params={"port": str(port)}) as g:
            sender = subprocess.Popen(["python3", "-c", code], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            try:
                assert sender.stdout is not None and sender.stdin is not None
                sport = int(sender.stdout.readline())

                def send(n: int) -> None:
                    sender.stdin.write("go\n" * n)
                    sender.stdin.flush()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    send(1)
                    if any(e["known"] for e in g.events(timeout=5, count=1)):
                        break
                send(3)
                evs = list(g.events(timeout=10, count=3))
            finally:
                sender.kill()
                sender.wait()
    assert len(evs) == 3
    for ev in evs:
        assert ev["known"] and ev["sport"] == sport, ev
        assert (ev["proc.pid"], ev["proc.comm"], ev["proc.parent.pid"]) == (sender.pid, "python3",
                                                                            os.getpid())
        assert ev["netns_id"] == os.stat(f"/proc/{os.getpid()}/ns/net").st_ino
