"""Gadgets with a WASM module, run as root: what the module adds is in the events, the
data sources it creates are printed, its params and config work, its failures are one
line and leave nothing loaded. The gadgets are in tests/wasm/gadgets and sample-gadgets
(their own specs run in tests/integration/test_gadget_test.py)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import REPO, SAMPLES, clang_available, run_gadget  # noqa: F401
from ..podman_util import Podman

GADGETS = REPO / "tests" / "wasm" / "gadgets"
pytestmark = pytest.mark.usefixtures("root", "clang_available")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test gadgets built once (this host's arch) into one store."""
    store = tmp_path_factory.mktemp("wasm-run") / "store"
    from gadgetsmith.runtime.bpf.loader import host_arch

    for d in (GADGETS / "getpgid", GADGETS / "flight", SAMPLES / "trace_dns_c"):
        run_gadget("build", str(d), "-t", f"{d.name}:test", "--arch", host_arch(), store=store)
    return store


def getpgid_calls(*args: int, delay: float = 0.0) -> threading.Thread:
    """getpgid(arg) for each arg (the test gadgets trace them), after ``delay`` seconds."""
    def calls() -> None:
        time.sleep(delay)
        for a in args:
            try:
                os.getpgid(a)
            except OSError:
                pass
    t = threading.Thread(target=calls, daemon=True)
    t.start()
    return t


def run_with(store: Path, *args: str, trigger=lambda: None) -> subprocess.CompletedProcess:
    """`gadget --debug run ARGS`; ``trigger`` runs once the gadget is attached (its
    "debug: pipeline: ..." line: on a loaded machine, starting takes seconds)."""
    argv = [str(Path(os.sys.executable).parent / "gadget"), "--debug", "--store", str(store),
            "run", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        err.append(line)
        if line.startswith("debug: pipeline: "):
            break
    trigger()
    out, rest = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, proc.returncode, out, "".join(err) + rest)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_module_fields_params_and_what_it_emits_at_stop(images: Path) -> None:
    """`gadget run` of an image with a module: the field it adds is in every event; its
    param (gadget.yaml params.wasm) is set with -p; what it emits in gadgetStop, read
    from the gadget's own perf event array, is printed when the run ends."""
    r = run_with(images, "getpgid:test", "--host", "--timeout", "3", "-p", "label=xyz", "-o", "json",
                 trigger=lambda: getpgid_calls(4242, 7, 4242).join())
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    mine = [e for e in events if e.get("proc", {}).get("pid") == os.getpid()]
    assert [(e["arg"], e["doubled"]) for e in mine] == [(4242, 8484), (7, 14), (4242, 8484)]
    recorded = [e for e in events if set(e) == {"pid", "arg", "label"}]
    assert [(e["pid"], e["arg"], e["label"]) for e in recorded] == [(os.getpid(), 4242, "xyz")] * 2
    # the last lines: what the module emitted at gadgetStop
    assert events[-2:] == recorded[-2:]
    # the map iterator, drained while the tracer is followed (JSON arrays)
    rounds = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("[")]
    counts = [(t["arg"], t["count"]) for rnd in rounds for t in rnd]
    assert {a for a, _ in counts} == {4242} and sum(c for _, c in counts) == 2


def test_a_gadget_whose_data_sources_are_its_modules(images: Path) -> None:
    """No data source in the object (as IG's traceloop): the run waits for its timeout,
    then prints what the module emits at gadgetStop, under the module's columns: the
    records of the gadget's perf array, and of the one the module made and put into the
    gadget's map of perf arrays (whose inner map has no size, as traceloop's)."""
    r = run_with(images, "flight:test", "--host", "--timeout", "3",
                 trigger=lambda: getpgid_calls(4242, 4343, 4242, 4343, 4242).join())
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "ARG"]
    pid = str(os.getpid())
    assert [ln.split() for ln in lines[1:]] == [[pid, "4242"]] * 3 + [[pid, "4343"]] * 2


def test_a_module_data_source_is_printed_with_its_own_columns(images: Path) -> None:
    """The C sample: a DNS query becomes an event of the module's "queries" data source,
    and the datagram's event carries the module's is_dns field; columns name each line's
    data source."""
    script = ("import socket, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
              "s.sendto(struct.pack('>6H', 0xbeef, 0x0100, 1, 0, 0, 0) + "
              "b'\\x04wasm\\x04test\\x00' + struct.pack('>HH', 1, 1), ('127.0.0.1', 53))")
    senders: list[subprocess.Popen] = []
    r = run_with(images, "trace_dns_c:test", "--host", "--timeout", "3", "--fields",
                 "sends:comm,pid,len,is_dns;queries:id,name,qtype,pid",
                 trigger=lambda: senders.append(subprocess.Popen(["python3", "-c", script])))
    sender = senders[0]
    sender.wait()
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert ["sends:", "COMM", "PID", "LEN", "IS_DNS"] in lines
    assert ["queries:", "ID", "NAME", "QTYPE", "PID"] in lines
    assert ["queries:", str(0xbeef), "wasm.test", "A", str(sender.pid)] in lines
    assert ["sends:", "python3", str(sender.pid), "27", "True"] in lines


def bpf_fds() -> int:
    """eBPF programs, maps and links this process holds."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("anon_inode:bpf")
        except OSError:
            pass
    return n


@pytest.fixture(scope="module")
def getpgid_gadget() -> tuple[bytes, dict, bytes]:
    from gadgetsmith.toolchain.build.driver import build_for_host_with_wasm

    data, metadata, wasm = build_for_host_with_wasm(GADGETS / "getpgid")
    assert wasm is not None
    return data, metadata, wasm


def test_a_failing_module_is_one_line_and_nothing_stays(getpgid_gadget, images: Path) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import WasmModuleError

    where = "gadgetStart: returned 5 (an error)"
    data, metadata, wasm = getpgid_gadget
    before = bpf_fds()
    with pytest.raises(WasmModuleError) as ei:
        with Gadget(data, metadata=metadata, wasm=wasm, params={"mode": "fail-start"}) as g:
            getpgid_calls(1, 666, 2)
            for _ in g.events(timeout=20):
                pass
    assert str(ei.value) == f"wasm module program.wasm: {where}"
    assert bpf_fds() == before, "the gadget's programs, maps or links are still open"
    # the command line: the same line, exit code 1
    r = run_with(images, "getpgid:test", "--host", "--timeout", "5", "-p", "mode=fail-start",
                 trigger=lambda: getpgid_calls(666, 666).join())
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"error: wasm module program.wasm: {where}"


TRAPPED = ("wasm module program.wasm: dataSourceCallback for 'calls': trap: wasm `unreachable` "
           "instruction executed (in on_call); the run goes on without the module (as ig, "
           "which drops a callback's failure)")


def test_a_module_failing_in_a_callback_warns_and_the_run_goes_on(getpgid_gadget,
                                                                  images: Path) -> None:
    """As under ig (IG's host drops a dataSourceCallback's error; IG's deadlock module
    panics there when its cycle search returns an edge its graph lacks): one warning line
    naming the module, the call and the trap, and the gadget's events keep coming, without
    what the module added; the module is not called again."""
    from gadgetsmith.runtime import Gadget

    data, metadata, wasm = getpgid_gadget
    mine: list[tuple[int, object]] = []
    with Gadget(data, metadata=metadata, wasm=wasm, params={"mode": "trap-callback"}) as g:
        getpgid_calls(1)
        for ev in g.events(timeout=30):
            if ev.get("proc.pid") != os.getpid():
                continue
            mine.append((ev["arg"], ev.get("doubled")))
            if ev["arg"] == 1:
                getpgid_calls(666, 2, 3)  # 1's batch went through the module first
            if ev["arg"] == 3:
                break
        assert g.warnings.count(TRAPPED) == 1, g.warnings
    assert mine[0] == (1, 2)
    assert [a for a, _ in mine] == [1, 666, 2, 3]
    assert mine[2:] == [(2, 0), (3, 0)]  # not called for them: its field at zero, as ig shows it
    r = run_with(images, "getpgid:test", "--host", "--timeout", "4", "-p", "mode=trap-callback",
                 "-o", "json", trigger=lambda: getpgid_calls(666, 2).join())
    assert r.returncode == 0, r.stderr
    assert f"warning: {TRAPPED}" in r.stderr.splitlines()
    assert [(e["arg"], e["doubled"]) for e in json_lines(r.stdout)
            if e.get("proc", {}).get("pid") == os.getpid()] == [(666, 0), (2, 0)]


def test_the_module_can_keep_a_program_unattached(getpgid_gadget, images: Path) -> None:
    """setConfig("programs.on_getpgid.attach_to", "gadget_program_disabled") in
    gadgetPreStart: the program is not attached (no events), and --debug says so."""
    r = run_with(images, "getpgid:test", "--host", "--timeout", "3", "-p", "mode=disable", "-o", "json",
                 trigger=lambda: getpgid_calls(1, 2, 3).join())
    assert [e for e in json_lines(r.stdout) if "arg" in e] == []
    assert "program on_getpgid (tracepoint/syscalls/sys_enter_getpgid): not attached " \
           "(attach_to: gadget_program_disabled)" in r.stderr


def test_unknown_params_name_the_modules_params_too(images: Path) -> None:
    r = run_gadget("run", "getpgid:test", "--host", "--timeout", "1", "-p", "nope=1",
                   store=images, check=False)
    assert r.returncode == 2, r  # a param that does not exist is bad input
    assert r.stderr.strip().splitlines()[-1] == (
        "error: unknown param 'nope': this gadget's params are comm, gid, pid, tid, uid, and its "
        "WASM module's are label, mode")


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    p = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield p
    finally:
        p.cleanup()


def test_the_containers_data_source(getpgid_gadget, podman: Podman) -> None:
    """gadget.yaml's enable-containers-datasource: the module gets IG's "containers" data
    source, with CREATED for the containers running at start and for the ones that start
    later, and DELETED when they go."""
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.containers.collection import ContainerCollection, PodmanSource

    data, metadata, wasm = getpgid_gadget
    early = podman.start()
    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    with Gadget(data, metadata=metadata, wasm=wasm, containers=coll) as g:
        seen: list[tuple[str, str]] = []
        late = None
        deadline = time.monotonic() + 30
        for ev in g.events(datasource="seen", timeout=30):
            seen.append((ev["event_type"], ev["name"]))
            if late is None and ("CREATED", early) in seen:
                late = podman.start()
            if late is not None and ("CREATED", late) in seen:
                podman.run("rm", "-f", "-t", "0", late)
            if ("DELETED", late) in seen or time.monotonic() > deadline:
                break
    assert ("CREATED", early) in seen
    assert seen.index(("CREATED", late)) < seen.index(("DELETED", late))
