"""Shared fixtures. Tests drive the real `gadget` console script and real tools."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from . import hypothesis_profile  # noqa: F401 - loads the suite's hypothesis profile

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample-gadgets"
GADGET = str(Path(sys.executable).parent / "gadget")

REQUIRE_PRIVILEGES = os.environ.get("GADGETSMITH_REQUIRE_PRIVILEGES", "") not in ("", "0")


def load_yaml(text: str | bytes):
    """YAML as the toolchain reads it (ruamel, YAML 1.2)."""
    return YAML(typ="safe", pure=True).load(text)


def dump_yaml(doc) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


def skip_or_fail(reason: str) -> None:
    """Skip for a missing capability, unless `make test` asked for everything to run."""
    if REQUIRE_PRIVILEGES:
        pytest.fail(f"required capability missing (GADGETSMITH_REQUIRE_PRIVILEGES=1): {reason}")
    pytest.skip(reason)


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed (run `make setup`)")
    return path


def need_root(why: str = "loading eBPF programs needs root") -> None:
    if os.geteuid() != 0:
        skip_or_fail(why)


@pytest.fixture(scope="module")
def root() -> None:
    """Use with ``pytestmark = pytest.mark.usefixtures("root")`` in modules that load eBPF."""
    need_root()


@pytest.fixture(scope="session")
def clang_available() -> None:
    from gadgetsmith.toolchain.build.compile import find_toolchain
    from gadgetsmith.toolchain.errors import GadgetError

    try:
        find_toolchain()
    except GadgetError as e:
        skip_or_fail(str(e))


class Result:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<rc={self.returncode} stdout={self.stdout[-500:]!r} stderr={self.stderr[-1500:]!r}>"


def run_gadget(*args: str, store: Path | None = None, env: dict | None = None,
               cwd: Path | None = None, check: bool = True) -> Result:
    full_env = dict(os.environ)
    full_env.pop("GADGETSMITH_DEBUG", None)
    if store is not None:
        full_env["GADGETSMITH_STORE"] = str(store)
    if env:
        full_env.update(env)
    proc = subprocess.run([GADGET, *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)
    res = Result(proc)
    if check and proc.returncode != 0:
        raise AssertionError(f"gadget {' '.join(args)} failed: {res!r}")
    return res


def gadget_popen(*args: str, store: Path | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """`gadget ARGS` started, not waited for (stdout and stderr piped, text), with the
    environment run_gadget gives it."""
    full_env = dict(os.environ)
    full_env.pop("GADGETSMITH_DEBUG", None)
    if store is not None:
        full_env["GADGETSMITH_STORE"] = str(store)
    full_env.update(env or {})
    return subprocess.Popen([GADGET, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)


#: run `gadget ARGS` through the console script's entry in one interpreter, then print
#: which of typer, click and rich it imported (the plain-line fast path imports none)
_ENTRY_IMPORTS = """
import sys
sys.argv = ["gadget"] + sys.argv[1:]
from gadgetsmith.toolchain.cli import entry
try:
    entry.run()
except SystemExit as e:
    assert e.code == 0, e.code
print(sorted({m.split(".")[0] for m in sys.modules} & {"typer", "click", "rich"}))
"""


def entry_imports(*args: str, env: dict | None = None) -> tuple[list[str], str]:
    """`gadget ARGS` run to success by cli/entry.py: its stdout lines before the last, and
    the last: the frameworks it imported (``"[]"``: none)."""
    res = subprocess.run([sys.executable, "-c", _ENTRY_IMPORTS, *args], capture_output=True,
                         text=True, check=True, env=env)
    *out, frameworks = res.stdout.splitlines()
    return out, frameworks


def wait_attached(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the `gadget run` process ``proc`` holds an attached program (a bpf_link fd,
    as /proc/PID/fd shows it): a trigger started then is seen however slowly the machine
    started the gadget. Returns early if ``proc`` exits; AssertionError after ``timeout``."""
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        for fd in list(fd_dir.iterdir()) if fd_dir.exists() else []:
            with contextlib.suppress(OSError):
                if os.readlink(fd) == "anon_inode:bpf_link":
                    time.sleep(0.2)  # the gadget's other programs attach right after
                    return
        time.sleep(0.05)
    raise AssertionError(f"gadget (pid {proc.pid}) attached nothing in {timeout:.0f} s")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


TINY_PROGRAM = textwrap.dedent(
    """\
    #include <vmlinux.h>
    #include <bpf/bpf_helpers.h>
    #include <gadget/buffer.h>
    #include <gadget/macros.h>
    #include <gadget/types.h>

    struct event {
        gadget_timestamp timestamp_raw;
        __u32 pid;
        gadget_errno error_raw;
    };

    GADGET_TRACER_MAP(events, 1024 * 64);
    GADGET_TRACER(tiny, events, event);

    const volatile bool only_failed = false;
    GADGET_PARAM(only_failed);

    SEC("tracepoint/syscalls/sys_enter_getpid")
    int tiny_enter(void *ctx)
    {
        struct event *e = gadget_reserve_buf(&events, sizeof(*e));
        if (!e)
            return 0;
        e->timestamp_raw = bpf_ktime_get_boot_ns();
        e->pid = bpf_get_current_pid_tgid() >> 32;
        e->error_raw = 0;
        gadget_submit_buf(ctx, &events, e, sizeof(*e));
        return 0;
    }

    char LICENSE[] SEC("license") = "GPL";
    """
)

TINY_YAML = textwrap.dedent(
    """\
    name: tiny
    description: A tiny test gadget
    homepageURL: https://example.com/tiny
    documentationURL: https://example.com/tiny/docs
    sourceURL: https://example.com/tiny/src
    annotations:
      team.example.com/owner: platform
    datasources:
      tiny:
        fields:
          pid:
            annotations:
              description: Process ID
    params:
      ebpf:
        only_failed:
          key: failed
          defaultValue: "false"
          description: Show only failed calls
    """
)


@pytest.fixture
def tiny_gadget(tmp_path: Path) -> Path:
    d = tmp_path / "tiny"
    d.mkdir()
    (d / "program.bpf.c").write_text(TINY_PROGRAM)
    (d / "gadget.yaml").write_text(TINY_YAML)
    return d
