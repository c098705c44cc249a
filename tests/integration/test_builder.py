"""gadget builder create and gadget build --builder against a real podman socket.

The builder image is made once per machine: its Debian root filesystem is cached in
~/.cache/gadgetsmith/builder and the image stays in podman's storage, so after the first
run `gadget builder create` only checks that the engine has it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import GADGET, SAMPLES, gadget_popen, need_tool, run_gadget
from ..podman_util import IMAGE as BUSYBOX
from ..podman_util import Podman
from ..registry_util import PASSWORD, USER, registry_server  # noqa: F401

BUILDER = "localhost/gadgetsmith-builder:0.1.0"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def engine(pod: Podman) -> Iterator[dict[str, str]]:
    """podman's Docker-compatible API on a socket of this test process, stopped at the end."""
    sock = Path(f"/run/gadgetsmith-test/podman-{os.getpid()}.sock")
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen([pod.podman, "system", "service", "--time=0", f"unix://{sock}"],
                            env=pod.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _pings(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "podman system service did not answer"
            time.sleep(0.1)
        yield {"DOCKER_HOST": f"unix://{sock}"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        sock.unlink(missing_ok=True)


def _pings(sock: Path) -> bool:
    if not sock.exists():
        return False
    out = subprocess.run(["curl", "-s", "--max-time", "2", "--unix-socket", str(sock), "http://d/_ping"],
                         capture_output=True, text=True)
    return out.stdout == "OK"


@pytest.fixture(scope="module")
def builder(engine: dict[str, str]) -> dict:
    """`gadget builder create -o json` (minutes the first time on a machine, then about a second)."""
    need_tool("mmdebstrap")
    # run_gadget's 300 s may be short for a first download from a slow mirror
    proc = subprocess.run([GADGET, "builder", "create", "-o", "json"], capture_output=True, text=True,
                          env={**os.environ, **engine}, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def build(*args: str, env: dict[str, str]) -> tuple[int, str, str, int]:
    """`gadget build ARGS`: exit code, stdout, stderr and the gadget's pid."""
    proc = gadget_popen("build", *args, env=env)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err, proc.pid


def containers_of(pod: Podman, pid: int) -> list[str]:
    """The builder containers the `gadget` process ``pid`` made that still exist."""
    names = pod.run("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [n for n in names if n.startswith(f"gadgetsmith-builder-{pid}-")]


def error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


def test_create_labels_what_the_image_holds(builder: dict, engine: dict[str, str], pod: Podman) -> None:
    again = run_gadget("builder", "create", "-o", "json", env=engine).json()
    assert again["loaded"] is False and again["id"] == builder["id"]
    assert pod.run("image", "inspect", "--format", "{{.Id}}", BUILDER).stdout.strip() == \
        builder["id"].removeprefix("sha256:")
    # the labels are the versions dpkg has in the image
    query = pod.run("run", "--rm", "--network", "none", BUILDER, "dpkg-query", "-W",
                    "-f", "${Package} ${Version}\n", *builder["packages"]).stdout
    assert dict(line.split(" ", 1) for line in query.splitlines()) == builder["packages"]
    assert builder["labels"]["io.gadgetsmith.builder.version"] == \
        run_gadget("--version").stdout.split()[-1]


@pytest.mark.parametrize("name", ["trace_open", "trace_dns_c", "trace_exec_go"])
def test_builder_build_is_byte_identical_to_a_host_build(name: str, builder: dict, engine: dict[str, str],
                                                         pod: Podman, tmp_path: Path) -> None:
    """trace_open with cflags; trace_dns_c's C WASM module is compiled in the builder too,
    trace_exec_go's Go module on the host, with a note."""
    src = tmp_path / name
    shutil.copytree(SAMPLES / name, src)
    if name == "trace_open":
        (src / "build.yaml").write_text("cflags: ['-DGS_BUILDER_TEST=1', '-Wno-unused-macros']\n")
    host, box = tmp_path / "host", tmp_path / "box"
    host.mkdir()
    box.mkdir()
    env = {**engine, **EPOCH}
    rc, out, err, _ = build(str(src), "--local", "--no-store", "--output-dir", str(host), "-o", "json",
                            env=env)
    assert rc == 0, err
    rc, out2, err, pid = build(str(src), "--builder", "--no-store", "--output-dir", str(box), "-o", "json",
                               env=env)
    assert rc == 0, err
    for arch in ("amd64", "arm64"):
        assert (box / f"{arch}.bpf.o").read_bytes() == (host / f"{arch}.bpf.o").read_bytes(), arch
    assert json.loads(out2)["digest"] == json.loads(out)["digest"]
    assert ("note:" in err and "program.go is built on this host" in err) == (name == "trace_exec_go"), err
    assert containers_of(pod, pid) == []
    # objects written in the container belong to the caller; the build's work folder is gone
    assert (box / "amd64.bpf.o").stat().st_uid == os.getuid()
    assert sorted(p.name for p in box.iterdir()) == ["amd64.bpf.o", "arm64.bpf.o"]


@pytest.mark.parametrize("flag", ["-DX=$(touch {marker})", "-DX=1; touch {marker}", "`touch {marker}`"])
def test_cflags_never_reach_a_shell(flag: str, builder: dict, engine: dict[str, str],
                                    tmp_path: Path) -> None:
    src = tmp_path / "trace_open"
    shutil.copytree(SAMPLES / "trace_open", src)
    out = tmp_path / "out"
    out.mkdir()  # mounted writable in the container: a command run there would leave the file
    marker = out / f"pwned-{uuid.uuid4().hex[:8]}"
    (src / "build.yaml").write_text(json.dumps({"cflags": [flag.format(marker=marker)]}) + "\n")
    rc, _, err, _ = build(str(src), "--builder", "--no-store", "--output-dir", str(out), env=engine)
    assert rc == 2, err
    assert error_lines(err) and "cflags entry" in error_lines(err)[0]
    assert not marker.exists()


def test_errors_are_one_line_with_their_exit_code(builder: dict, engine: dict[str, str], pod: Podman,
                                                  tmp_path: Path) -> None:
    gadget = SAMPLES / "trace_open"
    rc, _, err, _ = build(str(gadget), "--builder", "--no-store",
                          env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: no container engine answers (unix:///nonexistent/docker.sock")

    rc, _, err, _ = build(str(gadget), "--builder-image", "localhost/gadgetsmith-no-such:1",
                          "--builder-image-pull", "never", "--no-store", env=engine)
    assert rc == 1 and err.splitlines() == [
        "error: builder image localhost/gadgetsmith-no-such:1: not in the container engine: pull it "
        "(--builder-image-pull missing), or make it with 'gadget builder create -t "
        "localhost/gadgetsmith-no-such:1'"], err

    # an image that is not a gadgetsmith builder (podman_util's busybox)
    rc, _, err, pid = build(str(gadget), "--builder-image", BUSYBOX, "--builder-image-pull", "never",
                            "--no-store", env=engine)
    assert rc == 2 and error_lines(err) == [
        f"error: --builder-image {BUSYBOX}: not a gadgetsmith builder image (no io.gadgetsmith.builder.* "
        "labels): make one with 'gadget builder create'"], err
    assert containers_of(pod, pid) == []

    rc, _, err, _ = build(str(gadget), "--builder-image", "Not A/Reference", "--no-store", env=engine)
    assert rc == 2 and len(error_lines(err)) == 1 and "--builder-image 'Not A/Reference'" in err, err

    rc, _, err, _ = build(str(gadget), "--builder", "--local", "--no-store", env=engine)
    assert rc == 2 and error_lines(err) == [
        "error: --local compiles with this host's clang: drop --builder, --builder-image and "
        "--builder-image-pull, or drop --local"], err

    bad = tmp_path / "bad"
    shutil.copytree(gadget, bad)
    text = (bad / "program.bpf.c").read_text()
    (bad / "program.bpf.c").write_text(text + "\nint broken(void) { return undeclared_name; }\n")
    rc, _, err, pid = build(str(bad), "--builder", "--no-store", env=engine)
    assert rc == 1, err
    assert len(error_lines(err)) == 1 and "compile failed: program.bpf.c:" in error_lines(err)[0], err
    assert "undeclared_name" in error_lines(err)[0] and "Traceback" not in err
    assert containers_of(pod, pid) == []


def _clang_running(directory: Path) -> bool:
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"clang-19") and str(directory).encode() in b" ".join(argv):
            return True
    return False


def _blocked_build(tmp_path: Path, engine: dict[str, str],
                   pod: Podman) -> tuple[subprocess.Popen, Path, Path]:
    """A builder build whose clang, in the container, blocks reading a FIFO nobody writes:
    returned once clang runs (the process, the gadget folder, the output folder)."""
    src = tmp_path / "slow"
    shutil.copytree(SAMPLES / "trace_open", src)
    os.mkfifo(src / "blocks.h")
    text = (src / "program.bpf.c").read_text()
    (src / "program.bpf.c").write_text(text + '\n#include "blocks.h"\n')
    out = tmp_path / "out"
    out.mkdir()
    proc = gadget_popen("build", str(src), "--builder", "--no-store", "--output-dir", str(out),
                        "--arch", "amd64", env=engine)
    deadline = time.monotonic() + 120
    while not (containers_of(pod, proc.pid) and _clang_running(src)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"clang did not start in the builder: {proc.communicate()}")
        time.sleep(0.1)
    return proc, src, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_removes_the_container(sig: signal.Signals, builder: dict, engine: dict[str, str],
                                         pod: Podman, tmp_path: Path) -> None:
    proc, src, out = _blocked_build(tmp_path, engine, pod)
    try:
        # while clang runs: no network, the caller's uid:gid, the sources read-only at their
        # host path, only this build's work folder writable
        name = containers_of(pod, proc.pid)[0]
        conf = json.loads(pod.run("inspect", name).stdout)[0]
        assert conf["HostConfig"]["NetworkMode"] == "none"
        assert conf["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
        mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in conf["Mounts"]}
        work = [d for d in mounts if d != str(src.resolve())]
        assert mounts[str(src.resolve())] == (str(src.resolve()), False)
        assert len(work) == 1 and Path(work[0]).parent == out.resolve() and mounts[work[0]][1] is True
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert containers_of(pod, proc.pid) == []
    assert not _clang_running(src)
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_killed_builds_container_goes_with_the_next_build(builder: dict, engine: dict[str, str],
                                                            pod: Podman, tmp_path: Path) -> None:
    proc, src, _ = _blocked_build(tmp_path, engine, pod)
    proc.kill()  # SIGKILL: gadget removes nothing itself
    proc.communicate()
    assert containers_of(pod, proc.pid) != []
    rc, _, err, _ = build(str(SAMPLES / "trace_open"), "--builder", "--no-store", "--arch", "amd64",
                          env=engine)
    assert rc == 0, err
    assert containers_of(pod, proc.pid) == []
    assert not _clang_running(src)


def test_pull_policies_against_a_registry(builder: dict, engine: dict[str, str], pod: Podman,
                                          registry_server, tmp_path: Path) -> None:  # noqa: F811
    reg = registry_server(tls=True, users={USER: PASSWORD})
    env = {**engine, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    login = subprocess.run([GADGET, "login", reg.host, "-u", USER, "--password-stdin", *reg.client_args()],
                           input=PASSWORD, text=True, capture_output=True, env={**os.environ, **env})
    assert login.returncode == 0, login.stderr
    ref = f"{reg.host}/tools/gadget-builder:1"
    pushed = run_gadget("builder", "push", ref, *reg.client_args(), "-o", "json", env=env).json()
    assert pushed["id"] == builder["id"]
    # the engine pulls: it trusts the registry's CA as podman does, per host:port
    certs = Path("/etc/containers/certs.d") / reg.host
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(reg.ca_file, certs / "ca.crt")
    gadget = str(SAMPLES / "trace_open")
    try:
        rc, _, err, _ = build(gadget, "--builder-image", ref, "--builder-image-pull", "never",
                              "--no-store", env=env)
        assert rc == 1 and "not in the container engine" in err, err
        rc, _, err, _ = build(gadget, "--builder-image", ref, "--no-store", env=env)  # missing
        assert rc == 0, err
        # by digest, as `gadget builder push` printed it
        rc, _, err, _ = build(gadget, "--builder-image", f"{ref.rsplit(':', 1)[0]}@{pushed['digest']}",
                              "--no-store", env=env)
        assert rc == 0, err
        assert pod.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == \
            builder["id"].removeprefix("sha256:")
        reg.stop()  # from here only the engine's copy exists
        rc, _, err, _ = build(gadget, "--builder-image", ref, "--builder-image-pull", "never",
                              "--no-store", env=env)
        assert rc == 0, err
        rc, _, err, _ = build(gadget, "--builder-image", ref, "--builder-image-pull", "always",
                              "--no-store", env=env)
        assert rc == 1 and len(error_lines(err)) == 1 and ref.split("/")[0] in err, err
    finally:
        shutil.rmtree(certs, ignore_errors=True)
        pod.run("rmi", ref, check=False)
