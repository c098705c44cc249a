"""Container collection against real podman containers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from gadgetsmith.runtime.containers.collection import (
    Container,
    ContainerCollection,
    ContainerSelector,
    PodmanSource,
)

from ..conftest import SAMPLES, need_root, run_gadget
from ..podman_util import Podman


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    p = Podman(tmp_path_factory.mktemp("podman"))
    yield p
    p.cleanup()


def test_discovers_podman_containers_with_namespaces(podman: Podman) -> None:
    name = podman.start(labels={
        "io.kubernetes.pod.name": "cart-7d9",
        "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.container.name": "cart",
        "app": "cart",
    })
    pid = podman.pid(name)
    cid = podman.inspect(name, "{{.Id}}")
    coll = ContainerCollection([PodmanSource(env=podman.env)])
    coll.refresh()
    found = {c.name: c for c in coll.containers()}
    assert name in found, coll.errors
    c = found[name]
    assert c.id == cid and c.pid == pid and c.runtime == "podman"
    assert c.mntns == os.stat(f"/proc/{pid}/ns/mnt").st_ino
    assert c.netns == os.stat(f"/proc/{pid}/ns/net").st_ino
    assert c.mntns != os.stat("/proc/self/ns/mnt").st_ino
    assert "gadgetsmith-busybox" in c.image
    assert (c.k8s_namespace, c.k8s_pod_name, c.k8s_container_name) == ("shop", "cart-7d9", "cart")
    assert coll.by_mntns(c.mntns) is c
    enr = c.enrichment()
    assert enr["runtime"]["containerName"] == name
    assert enr["k8s"]["podLabels"] == "app=cart"  # ig's k=v,k2=v2 string


def test_a_container_removed_during_a_listing_does_not_hide_the_others(podman: Podman) -> None:
    """podman inspect of several ids fails when one is gone; the others stay listed."""
    survivor = podman.start()
    victim = podman.start()

    class RemovedBetweenPsAndInspect(PodmanSource):
        def _run(self, *args: str, timeout: float = 30) -> str:
            out = super()._run(*args, timeout=timeout)
            if args[0] == "ps":
                podman.run("rm", "-f", "-t", "0", victim)
            return out

    coll = ContainerCollection([RemovedBetweenPsAndInspect(env=podman.env)])
    coll.refresh()
    names = {c.name for c in coll.containers()}
    assert survivor in names and victim not in names, coll.errors


def test_follows_containers_started_and_stopped(podman: Podman) -> None:
    src = PodmanSource(env=podman.env)
    added: list[Container] = []
    removed: list[Container] = []
    with ContainerCollection([src], rescan_interval=0.5) as coll:
        coll.on_add.append(added.append)
        coll.on_remove.append(removed.append)
        name = podman.start()
        assert coll.wait_for(lambda: any(c.name == name for c in added), timeout=15)
        podman.run("rm", "-f", "-t", "0", name)
        assert coll.wait_for(lambda: any(c.name == name for c in removed), timeout=15)
        assert all(c.name != name for c in coll.containers())


@pytest.mark.parametrize(
    "spec, expected",
    [
        (ContainerSelector(), {"web", "db", "cart"}),
        (ContainerSelector(containername="web"), {"web"}),
        (ContainerSelector(containername="web,db"), {"web", "db"}),
        (ContainerSelector(containername="!web"), {"db", "cart"}),
        (ContainerSelector(k8s_namespace="shop"), {"cart"}),
        (ContainerSelector(k8s_namespace="shop", k8s_podname="other"), set()),
        (ContainerSelector(runtimes="docker"), set()),
        (ContainerSelector(k8s_containername="cart"), {"cart"}),
        (ContainerSelector(k8s_containername="!cart"), {"web", "db"}),
        (ContainerSelector(k8s_selector="app=shop"), {"cart"}),
        (ContainerSelector(k8s_selector="app=shop,tier=front"), {"cart"}),
        (ContainerSelector(k8s_selector="app=shop,tier=back"), set()),
    ],
)
def test_selectors(spec: ContainerSelector, expected: set[str]) -> None:
    cs = [
        Container("1", "web", "podman", 1),
        Container("2", "db", "podman", 2),
        Container("3", "cart", "podman", 3, labels={"io.kubernetes.pod.namespace": "shop",
                                                   "io.kubernetes.pod.name": "cart-1",
                                                   "io.kubernetes.container.name": "cart",
                                                   "app": "shop", "tier": "front"}),
    ]
    assert {c.name for c in cs if spec.matches(c)} == expected


def test_gadget_containers_command(podman: Podman, tmp_path: Path) -> None:
    name = podman.start()
    res = run_gadget("containers", "--runtimes", "podman", "--format", "json",
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert name in rows and rows[name]["mntns"] > 0
    res = run_gadget("containers", "-c", name, env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUNTIME", "NAME", "ID"] and len(lines) == 2
    res = run_gadget("containers", "--runtimes", "nosuch", check=False)
    assert res.returncode == 1 and "unknown container runtime 'nosuch'" in res.stderr
    assert "Traceback" not in res.stderr


def _broken_podman_conf(tmp_path: Path) -> str:
    """A containers.conf real podman refuses to read: every podman command fails."""
    conf = tmp_path / "broken-containers.conf"
    conf.write_text("this is [not toml\n")
    return str(conf)


def test_gadget_containers_says_when_podman_did_not_answer(podman: Podman, tmp_path: Path) -> None:
    """Was: '[]' (or an empty table) and exit 0 when podman ps failed or timed out, the same
    as a host without containers (tests/integration/test_containers.py::test_gadget_containers_command
    once saw no containers on the loaded machine)."""
    podman.start()
    res = run_gadget("containers", "--runtimes", "podman", "-o", "json", check=False,
                     env={"CONTAINERS_CONF": _broken_podman_conf(tmp_path)})
    assert res.returncode == 1 and res.stdout == "", res
    assert res.stderr.startswith("error: no container runtime answered, so no container can be "
                                 "listed (podman: podman ps failed: "), res
    assert "Traceback" not in res.stderr


def test_a_runtime_that_does_not_answer_keeps_its_containers(podman: Podman, tmp_path: Path) -> None:
    """A rescan while podman fails (a timeout under load, a lock) must not drop podman's
    containers: while a gadget runs, that would remove them from its container filter."""
    name = podman.start()
    src = PodmanSource(env=podman.env)
    coll = ContainerCollection([src])
    removed: list[str] = []
    coll.on_remove.append(lambda c: removed.append(c.name))
    coll.refresh()
    assert name in {c.name for c in coll.containers()} and coll.unanswered == {}
    src.env = dict(podman.env, CONTAINERS_CONF=_broken_podman_conf(tmp_path))
    coll.refresh()
    assert name in {c.name for c in coll.containers()} and removed == []
    assert coll.unanswered["podman"].startswith("podman ps failed: ")
    src.env = podman.env
    coll.refresh()
    assert coll.unanswered == {} and name in {c.name for c in coll.containers()}


def test_run_without_host_says_why_it_may_print_only_a_header(podman: Podman, tmp_path: Path,
                                                             clang_available: None) -> None:
    """Was: a header and nothing else, the same as a gadget that saw no event."""
    need_root()
    trace_open = str(SAMPLES / "trace_open")
    env = {"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]}
    res = run_gadget("run", trace_open, "-c", "gs-nosuch-container", "--runtimes", "podman",
                     "--timeout", "1", env=env)
    assert res.stderr.splitlines()[-1] == (
        "warning: no container matches the container selection now: events come from containers "
        "only (those that start from now on too); use --host to trace host processes"), res
    res = run_gadget("run", trace_open, "--runtimes", "podman", "--timeout", "1",
                     env={"CONTAINERS_CONF": _broken_podman_conf(tmp_path)})
    assert "warning: podman did not answer, its containers are traced once it does: podman ps " \
           "failed: " in res.stderr, res


def test_containers_k8s_selectors_on_real_containers(podman: Podman) -> None:
    env = {"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]}
    cart = podman.start(labels={"io.kubernetes.container.name": "cart", "app": "shop",
                                "tier": "front"})
    other = podman.start(labels={"io.kubernetes.container.name": "db", "app": "shop",
                                 "tier": "back"})

    def names(*args: str) -> set[str]:
        res = run_gadget("containers", "--runtimes", "podman", "--format", "json", *args,
                         env=env)
        return {r["name"] for r in json.loads(res.stdout)} & {cart, other}

    assert names("--k8s-selector", "app=shop") == {cart, other}
    assert names("--k8s-selector", "app=shop,tier=front") == {cart}
    assert names("--k8s-containername", "db") == {other}
    assert names("--k8s-containername", "!db", "--k8s-selector", "app=shop") == {cart}
    res = run_gadget("containers", "--k8s-selector", "app", check=False, env=env)
    assert res.returncode == 1 and "expected key=value" in res.stderr


def test_absent_runtimes_are_skipped_with_a_reason() -> None:
    """containerd and CRI-O are used when present; on a host without them (like CI) asking
    for them says why they are skipped, and nothing fails."""
    import shutil

    from gadgetsmith.runtime.containers.collection import ContainerdSource, CrioSource, default_sources

    if ContainerdSource().available() or CrioSource().available():
        pytest.skip("containerd or CRI-O is present: the absent case cannot be shown here")
    why: list[str] = []
    assert default_sources(["containerd", "cri-o"], why) == []
    assert len(why) == 2 and why[0].startswith("containerd: ") and why[1].startswith("cri-o: ")
    if shutil.which("ctr") is None:
        assert "ctr command is not installed" in why[0]
    res = run_gadget("containers", "--runtimes", "containerd,cri-o", "--format", "json")
    assert json.loads(res.stdout) == []
    assert "warning: containerd: " in res.stderr and "warning: cri-o: " in res.stderr


def test_docker_api_source_via_podman_service(podman: Podman, tmp_path: Path) -> None:
    """The Docker-compatible API (here served by `podman system service`) through the SDK."""
    import subprocess
    import time

    from gadgetsmith.runtime.containers.collection import DockerApiSource

    sock = tmp_path / "podman.sock"
    svc = subprocess.Popen([podman.podman, "system", "service", "--time=0", f"unix://{sock}"],
                           env=podman.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        name = podman.start()
        src = DockerApiSource(str(sock), runtime_name="podman-api")
        assert src.available()
        found = {c.name: c for c in src.list()}
        assert name in found
        pid = podman.pid(name)
        assert found[name].pid == pid
        assert found[name].mntns == os.stat(f"/proc/{pid}/ns/mnt").st_ino
    finally:
        svc.terminate()
        svc.wait(timeout=10)


# ------------------------------------------------------------------ enrichment + filtering
LOOP = "while true; do cat /etc/passwd >/dev/null; sleep 0.1; done"


@pytest.fixture(scope="module")
def rt_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ..conftest import SAMPLES

    store = tmp_path_factory.mktemp("rtc") / "store"
    run_gadget("build", str(SAMPLES / "trace_open"), "-t", "trace_open:test", "--arch", "amd64",
               store=store)
    return store


def _events(store: Path, podman: Podman, seconds: float, **kw):
    from gadgetsmith.runtime import Gadget

    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    with Gadget("trace_open:test", store=store, containers=coll, **kw) as g:
        coll.start()
        evs = list(g.events(timeout=seconds))
        raw = g.raw_records
    coll.stop()
    return evs, raw


def test_container_events_are_enriched_and_filtered_in_kernel(podman: Podman, rt_store: Path):
    a = podman.start("sh", "-c", LOOP, labels={
        "io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.container.name": "web"})
    b = podman.start("sh", "-c", LOOP)
    a_id = podman.inspect(a, "{{.Id}}")
    evs, raw = _events(rt_store, podman, 2.5, host=False,
                       selector=ContainerSelector(containername=a))
    assert evs, "no events from the selected container"
    assert {e["runtime.containerName"] for e in evs} == {a}
    # the other busy container and the host never reached user space: dropped in the kernel
    assert raw == len(evs)
    e = next(e for e in evs if e["fname"] == "/etc/passwd")
    assert e["proc.comm"] == "cat"
    assert e["runtime.containerId"] == a_id and e["runtime.runtimeName"] == "podman"
    assert "gadgetsmith-busybox" in e["runtime.containerImageName"]
    assert (e["k8s.namespace"], e["k8s.podName"], e["k8s.containerName"]) == ("shop", "web-1", "web")
    assert b not in {x["runtime.containerName"] for x in evs}


def test_default_is_containers_only_and_host_adds_the_host(podman: Podman, rt_store: Path):
    import subprocess
    import threading

    name = podman.start("sh", "-c", LOOP)

    def host_activity(stop: threading.Event) -> None:
        # all through the run, however long a loaded machine takes to load and attach
        while not stop.wait(0.1):
            subprocess.run(["cat", "/etc/hostname"], capture_output=True)

    def run(host: bool) -> list[dict]:
        stop = threading.Event()
        t = threading.Thread(target=host_activity, args=(stop,))
        t.start()
        try:
            return _events(rt_store, podman, 2.5, host=host)[0]
        finally:
            stop.set()
            t.join()

    evs = run(host=False)
    assert evs and all(e["runtime.containerName"] for e in evs)
    assert name in {e["runtime.containerName"] for e in evs}
    evs = run(host=True)
    names = {e["runtime.containerName"] for e in evs}
    assert "" in names and name in names  # host processes and the container
    assert any(e["fname"] == "/etc/hostname" and e["runtime.containerName"] == "" for e in evs)


def test_container_started_after_the_gadget_is_traced(podman: Podman, rt_store: Path):
    from gadgetsmith.runtime import Gadget

    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    name = f"gs-late-{os.getpid()}"
    with Gadget("trace_open:test", store=rt_store, containers=coll, host=False,
                selector=ContainerSelector(containername=name)) as g:
        coll.start()
        podman.start("sh", "-c", LOOP, name=name)
        evs = [e for e in g.events(timeout=6)]
    coll.stop()
    assert evs and {e["runtime.containerName"] for e in evs} == {name}


@pytest.mark.parametrize("pairs", [False, True], ids=["events", "event_pairs"])
def test_host_run_enriches_a_container_started_after_the_gadget(podman: Podman, rt_store: Path,
                                                               pairs: bool):
    """--host (no kernel filter): once the collection has seen a new container, its events
    carry its name, with events() (fields merged) and event_pairs() (handed beside)."""
    from gadgetsmith.runtime import Gadget

    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    name = f"gs-late-host-{os.getpid()}-{int(pairs)}"
    found = None
    with Gadget("trace_open:test", store=rt_store, containers=coll, host=True) as g:
        coll.start()
        podman.start("sh", "-c", LOOP, name=name)
        stream = (g.event_pairs(timeout=10) if pairs else
                  ((e, None) for e in g.events(timeout=10)))
        for ev, extra in stream:
            fields = extra.fields if extra is not None else ev
            if fields["runtime.containerName"] == name and ev["fname"] == "/etc/passwd":
                found = {**ev, **fields}
                g.stop()
    coll.stop()
    assert found is not None, f"no enriched event from {name}"
    assert found["proc.comm"] == "cat" and found["runtime.runtimeName"] == "podman"


def test_non_selected_busy_container_never_reaches_user_space(podman: Podman, rt_store: Path):
    """Two busy containers; a gadget selecting one of them receives (ring-buffer records,
    before any user-space processing) only that one's events, while an unfiltered gadget
    running at the same time shows the other one was just as busy."""
    from gadgetsmith.runtime import Gadget

    chosen = podman.start("sh", "-c", LOOP)
    busy = podman.start("sh", "-c", LOOP)
    busy_mntns = os.stat(f"/proc/{podman.pid(busy)}/ns/mnt").st_ino
    chosen_mntns = os.stat(f"/proc/{podman.pid(chosen)}/ns/mnt").st_ino
    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    coll.start()
    received: list[int] = []
    try:
        with Gadget("trace_open:test", store=rt_store, containers=coll, host=False,
                    selector=ContainerSelector(containername=chosen),
                    processors=[lambda ev: received.append(ev["proc.mntns_id"]) or ev]) as sel, \
                Gadget("trace_open:test", store=rt_store, host=True) as everything:
            import time

            deadline = time.monotonic() + 3
            emitted_by_busy = 0
            kept = []
            while time.monotonic() < deadline:
                kept += list(sel.events(timeout=0.2))
                emitted_by_busy += sum(1 for e in everything.events(timeout=0.2)
                                       if e["proc.mntns_id"] == busy_mntns)
            raw = sel.raw_records
    finally:
        coll.stop()
    assert emitted_by_busy > 10, "the non-selected container was not busy"
    # every record the selecting gadget read from its ring buffer came from `chosen`
    assert busy_mntns not in received and set(received) == {chosen_mntns}
    assert raw == len(received) == len(kept) > 0
    assert {e["runtime.containerName"] for e in kept} == {chosen}


def test_cli_run_with_container_selector(podman: Podman, rt_store: Path):
    name = podman.start("sh", "-c", LOOP)
    res = run_gadget("run", "trace_open:test", "-c", name, "--timeout", "60", "--count", "3", "-o", "json",
                     "-F", "fname==/etc/passwd", store=rt_store,
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert rows and {r["runtime"]["containerName"] for r in rows} == {name}
    res = run_gadget("run", "trace_open:test", "--timeout", "60", "--count", "1", "--fields",
                     "runtime.containerName,comm,fname", "-F", "fname==/etc/passwd",
                     "-c", name, store=rt_store,
                     env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["RUNTIME.CONTAINERNAME", "COMM", "FNAME"]
    assert lines[1].split()[:2] == [name, "cat"]
    res = run_gadget("run", "trace_open:test", "--host", "-c", name, store=rt_store, check=False)
    assert res.returncode == 2 and "--host" in res.stderr


def _lines(mode: str, columns, events, fields=None) -> str:
    import io

    from gadgetsmith.runtime.events.output import Printer

    out = io.StringIO()
    p = Printer(mode, columns, fields, out=out, autoflush=False)
    for ev, extra in events:
        p.event(dict(ev), extra)
    return out.getvalue()


def test_spliced_enrichment_prints_exactly_the_merged_events(podman: Podman, rt_store: Path):
    """event_pairs() + Printer (pre-rendered enrichment spliced into JSON lines) writes
    byte for byte what events() (fields merged into every event) writes, in every mode,
    for host and container events; a --filter on runtime.* gets the merged fields."""
    from gadgetsmith.runtime import Gadget

    name = podman.start("sh", "-c", LOOP, labels={
        "io.kubernetes.pod.name": "cart-7d9", "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.container.name": "cart", "app": 'c"art\u00e9', "tier": "web"})
    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    coll.start()
    try:
        with Gadget("trace_open:test", store=rt_store, containers=coll, host=True) as g:
            pairs = list(g.event_pairs(timeout=2.5))
            columns = g.datasources[0].decoder.columns
        with Gadget("trace_open:test", store=rt_store, containers=coll, host=False,
                    filter=f"runtime.containerName=={name},k8s.podName~^cart") as g:
            filtered = list(g.event_pairs(timeout=2.5))
    finally:
        coll.stop()
    mine = [(ev, x) for ev, x in pairs if x is not None and x.fields["runtime.containerName"] == name]
    host = [(ev, x) for ev, x in pairs if x is not None and x.fields["runtime.containerName"] == ""]
    assert mine and host, "need both container and host events"
    assert all("runtime.containerName" not in ev for ev, _ in pairs)  # not merged
    merged = [({**ev, **x.fields}, None) for ev, x in pairs]
    for mode in ("json", "columns", "jsonpretty", "yaml"):
        assert _lines(mode, columns, pairs) == _lines(mode, columns, merged), mode
    fields = ["runtime.containerName", "k8s.podLabels", "comm", "fname"]
    assert _lines("json", columns, pairs, fields) == _lines("json", columns, merged, fields)
    rows = [json.loads(x) for x in _lines("json", columns, mine).splitlines()]
    assert rows[0]["k8s"] == {"namespace": "shop", "podName": "cart-7d9", "containerName": "cart",
                              "podLabels": 'app=c"art\u00e9,tier=web', "hostnetwork": False,
                              "node": "", "owner": {"kind": "", "name": ""}}
    assert rows[0]["runtime"]["containerName"] == name
    # the filter reads the enrichment: events come merged, only from the container
    assert filtered and all(x is None for _, x in filtered)
    assert {ev["runtime.containerName"] for ev, _ in filtered} == {name}
    assert {ev["k8s.podName"] for ev, _ in filtered} == {"cart-7d9"}


def test_only_data_sources_with_a_mount_namespace_id_get_container_fields(
        tiny_gadget: Path, tmp_path: Path) -> None:
    """Like ig: a data source without a gadget_mntns_id field has no runtime.*/k8s.*
    fields or columns (there is nothing to look a container up by)."""
    from ..conftest import need_root

    need_root()
    import subprocess
    import threading

    stop = threading.Event()

    def calls() -> None:
        while not stop.is_set():
            subprocess.run(["/bin/true"], check=False)
            os.getpid()
            stop.wait(0.05)

    t = threading.Thread(target=calls, daemon=True)
    t.start()
    try:
        js = run_gadget("run", str(tiny_gadget), "--host", "-o", "json", "--count", "2",
                        "--timeout", "30", store=tmp_path / "s")
        cols = run_gadget("run", str(tiny_gadget), "--host", "--count", "1", "--timeout", "30",
                          store=tmp_path / "s")
    finally:
        stop.set()
        t.join()
    events = [json.loads(line) for line in js.stdout.splitlines()]
    assert events and all("runtime" not in ev and "k8s" not in ev and "pid" in ev for ev in events)
    header = cols.stdout.splitlines()[0]
    assert "PID" in header and "RUNTIME" not in header and "CONTAINER" not in header, header


# ------------------------------------------------------------ enrichment by network namespace
NETNS_PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
    gadget_netns_id netns_id;
    __u32 pid;
    char comm[16];
};

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(unames, events, event);

SEC("tracepoint/syscalls/sys_enter_newuname")
int netns_uname(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct event *e = gadget_reserve_buf(&events, sizeof(*e));

    if (!e)
        return 0;
    e->netns_id = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

NETNS_YAML = """\
name: unames
description: uname calls with the caller's network namespace only
datasources:
  unames:
    fields:
      comm:
        annotations:
          description: Command
"""

UNAME_LOOP = "while true; do uname >/dev/null; sleep 0.1; done"
POD = {"io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop", "app": "web"}


@pytest.fixture(scope="module")
def netns_gadget(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("netns") / "unames"
    d.mkdir()
    (d / "program.bpf.c").write_text(NETNS_PROGRAM)
    (d / "gadget.yaml").write_text(NETNS_YAML)
    store = d.parent / "store"
    run_gadget("build", str(d), "-t", "unames:test", "--arch", "amd64", store=store)
    return d, store


def _netns_events(store: Path, podman: Podman, seconds: float) -> list[dict]:
    """Events of the netns-only gadget (with host processes calling uname meanwhile)."""
    import subprocess
    import threading

    from gadgetsmith.runtime import Gadget

    def host_activity():
        for _ in range(10):
            subprocess.run(["uname"], capture_output=True)

    coll = ContainerCollection([PodmanSource(env=podman.env)], rescan_interval=0.5)
    coll.start()
    t = threading.Timer(0.5, host_activity)
    try:
        with Gadget("unames:test", store=store, containers=coll, host=True) as g:
            assert g.datasources[0].decoder.mntns_field is None  # keyed by netns only
            t.start()
            evs = list(g.events(timeout=seconds))
    finally:
        t.join()
        coll.stop()
    return evs


def test_netns_only_data_source_is_enriched_by_network_namespace(
        podman: Podman, netns_gadget: tuple[Path, Path]) -> None:
    """A data source with only a gadget_netns_id: a container alone in its network
    namespace gets its own fields; once a second container joins that namespace (a pod),
    only the fields both agree on (the pod's) remain; the host's namespace, which a
    --network host container shares, never gets container fields."""
    from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS

    _, store = netns_gadget
    host_netns = os.stat("/proc/self/ns/net").st_ino  # where the host's uname calls run
    first = podman.start("sh", "-c", UNAME_LOOP, network="none",
                         labels={**POD, "io.kubernetes.container.name": "web"})
    podman.start("sh", "-c", UNAME_LOOP, network="host")  # shares the host's netns
    netns = os.stat(f"/proc/{podman.pid(first)}/ns/net").st_ino
    assert netns != host_netns
    first_id = podman.inspect(first, "{{.Id}}")

    evs = _netns_events(store, podman, 2.5)
    mine = [e for e in evs if e["netns_id"] == netns]
    host = [e for e in evs if e["netns_id"] == host_netns]
    assert mine and host, "need events from the container and from the host"
    assert all(e["comm"] == "uname" for e in mine)
    assert {e["runtime.containerName"] for e in mine} == {first}
    e = mine[0]
    assert e["runtime.containerId"] == first_id and e["runtime.runtimeName"] == "podman"
    assert (e["k8s.namespace"], e["k8s.podName"], e["k8s.containerName"]) == ("shop", "web-1", "web")
    assert e["k8s.podLabels"] == "app=web"
    assert all({k: h[k] for k in EMPTY_FIELDS} == EMPTY_FIELDS for h in host)

    # a sidecar joins the first container's network namespace: the pod's fields remain
    sidecar = podman.start("sh", "-c", UNAME_LOOP, network=f"container:{first}",
                           labels={**POD, "io.kubernetes.container.name": "sidecar"})
    try:
        evs = _netns_events(store, podman, 2.5)
    finally:  # before `first`: podman 4.3 does not remove a container others join
        podman.run("rm", "-f", "-t", "0", sidecar)
    shared = [e for e in evs if e["netns_id"] == netns]
    host = [e for e in evs if e["netns_id"] == host_netns]
    assert shared and host
    for e in shared:
        assert (e["runtime.containerName"], e["runtime.containerId"], e["k8s.containerName"],
                e["runtime.containerPid"]) == ("", "", "", 0)
        assert (e["k8s.namespace"], e["k8s.podName"], e["k8s.podLabels"]) == (
            "shop", "web-1", "app=web")
        assert e["runtime.runtimeName"] == "podman"
    assert all({k: h[k] for k in EMPTY_FIELDS} == EMPTY_FIELDS for h in host)


def test_cli_columns_and_json_for_a_netns_only_data_source(
        podman: Podman, netns_gadget: tuple[Path, Path]) -> None:
    """gadget run shows the container column and the runtime/k8s objects for a data
    source keyed by network namespace, as for mount namespace ones."""
    _, store = netns_gadget
    name = podman.start("sh", "-c", UNAME_LOOP, network="none")
    env = {"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]}
    # (--host hides the column, mostly empty there: --fields asks for it)
    res = run_gadget("run", "unames:test", "--host", "--count", "1", "--timeout", "60",
                     "--fields", "runtime.containerName", "-F", f"runtime.containerName=={name}",
                     store=store, env=env)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["RUNTIME.CONTAINERNAME"], lines[0]
    assert lines[1].split()[0] == name
    res = run_gadget("run", "unames:test", "--host", "--count", "2", "--timeout", "60",
                     "-o", "json", "-F", f"runtime.containerName=={name}", store=store, env=env)
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert rows and all(r["runtime"]["containerName"] == name and r["comm"] == "uname"
                        and r["k8s"]["podName"] == "" for r in rows)


#: the runtime.*/k8s.* fields and JSON types `ig run -o json` prints (ig v0.55.1, seen with
#: bench/ig_diff.py): names, nesting and types must be the same in gadget's events
IG_ENRICHMENT = {
    **{f"runtime.{k}": str for k in ("containerName", "runtimeName", "containerId",
                                     "containerImageName", "containerImageDigest")},
    "runtime.containerPid": int, "runtime.containerStartedAt": int,
    **{f"k8s.{k}": str for k in ("namespace", "podName", "containerName", "podLabels", "node",
                                 "owner.kind", "owner.name")},
    "k8s.hostnetwork": bool,
}


def test_enrichment_fields_are_igs() -> None:
    from gadgetsmith.runtime.containers.collection import host_netns, started_at_ns
    from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS, flatten

    assert {k: type(v) for k, v in EMPTY_FIELDS.items()} == IG_ENRICHMENT
    c = Container("abc", "cart", "podman", 42, started_at="2026-12-01T22:35:50.123456789+01:00",
                  netns=host_netns(), labels={"app": "cart", "tier": "web",
                                              "io.kubernetes.pod.name": "cart-7d9"})
    flat = flatten(c.enrichment())
    assert {k: type(v) for k, v in flat.items()} == IG_ENRICHMENT
    assert flat["runtime.containerStartedAt"] == 1796160950123456789  # ns, as ig
    assert flat["k8s.podLabels"] == "app=cart,tier=web"
    assert flat["k8s.hostnetwork"] is True  # --network host
    assert flatten(Container("d", "x", "docker", 1, netns=1).enrichment())["k8s.hostnetwork"] is False
    # what the runtimes write: docker/podman RFC 3339 (any fraction), CRI ns integers
    assert started_at_ns("2026-12-01T21:35:50Z") == 1796160950 * 10**9
    assert started_at_ns("2026-12-01 21:35:50.5 +0000 UTC") == 1796160950 * 10**9 + 500_000_000
    assert started_at_ns("1796160950123456789") == 1796160950123456789
    assert started_at_ns("") == started_at_ns("0001-01-01T00:00:00Z") == started_at_ns("soon") == 0
