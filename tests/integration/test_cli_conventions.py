"""Conventions users bring from docker, ig and cosign, through the CLI as they call it
(issue 15): `gadget version`, shell completion, gadget params as options, one output option,
columns that fit the terminal."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gadgetsmith.toolchain import __version__
from gadgetsmith.toolchain.sdk import IG_VERSION

from ..conftest import GADGET, REPO, SAMPLES, load_yaml, need_root, run_gadget
from .test_registry import make_image


def test_version_names_client_ig_api_tools_and_kernel() -> None:
    res = run_gadget("version")
    assert res.returncode == 0 and res.stderr == ""
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in res.stdout.splitlines()}
    assert list(lines) == ["Client", "IG API", "clang", "bpftool", "libbpf", "Kernel", "Kernel BTF"]
    assert lines["Client"].startswith(__version__ + " ")
    assert lines["IG API"].startswith(IG_VERSION + " ")
    assert lines["clang"].startswith("19.") and "clang-19" in lines["clang"]
    assert lines["bpftool"].startswith("v") and "bpftool" in lines["bpftool"]
    assert lines["libbpf"].split()[0].count(".") == 1
    assert lines["Kernel"].startswith(platform.release())
    assert lines["Kernel BTF"].startswith("yes") and "/sys/kernel/btf/vmlinux" in lines["Kernel BTF"]


def test_version_json_and_a_missing_tool(tmp_path: Path) -> None:
    env = {"CLANG": str(tmp_path / "no-such-clang"), "BPFTOOL": str(tmp_path / "nobpftool")}
    res = run_gadget("version", "--format", "json", env=env)
    assert res.returncode == 0, res
    doc = res.json()
    assert doc["client"]["version"] == __version__
    assert doc["clang"]["version"] is None
    assert doc["clang"]["detail"].startswith(f"CLANG={tmp_path / 'no-such-clang'} is not an executable")
    assert doc["bpftool"]["version"] is None and "cannot run it" in doc["bpftool"]["detail"]
    text = run_gadget("version", env=env).stdout
    assert "clang:      not found  (CLANG=" in text


def _complete(words: list[str], store: Path | None = None) -> list[str]:
    """What bash offers after `gadget completion bash` is sourced, for the line ``words``
    (the last word is the one being completed)."""
    script = run_gadget("completion", "bash").stdout
    env = dict(os.environ, PATH=f"{Path(GADGET).parent}:{os.environ['PATH']}")
    if store is not None:
        env["GADGETSMITH_STORE"] = str(store)
    line = " ".join(json.dumps(w) for w in words)
    prog = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMPREPLY=();"
            ' _gadget_completion gadget; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completion_of_commands_options_and_images(tmp_path: Path) -> None:
    assert _complete(["gadget", "vers"]) == ["version"]
    assert set(_complete(["gadget", "l"])) == {"list", "login", "logout"}  # not the hidden ls
    assert _complete(["gadget", "run", "--time"]) == ["--timeout"]
    assert _complete(["gadget", "completion", ""]) == ["bash", "zsh", "fish"]

    store = tmp_path / "s"
    make_image(store, "ghcr.io/inspektor-gadget/gadget/trace_x:v1")
    make_image(store, "reg.example.com/team/top_y:dev")
    assert _complete(["gadget", "run", "tr"], store) == ["trace_x:v1"]
    assert _complete(["gadget", "inspect", "reg"], store) == ["reg.example.com/team/top_y:dev"]


def test_zsh_and_fish_scripts_call_back_with_their_shell() -> None:
    zsh = run_gadget("completion", "zsh").stdout
    fish = run_gadget("completion", "fish").stdout
    assert zsh.startswith("#compdef gadget") and "_GADGET_COMPLETE=zsh_complete" in zsh
    assert "complete --no-files --command gadget" in fish and "fish_complete" in fish
    env = dict(os.environ, _GADGET_COMPLETE="zsh_complete", COMP_WORDS="gadget vers", COMP_CWORD="1")
    proc = subprocess.run([GADGET], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.splitlines()[:2] == ["plain", "version"], proc


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    res = run_gadget("completion", "tcsh", check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: Invalid value for 'SHELL:{bash|zsh|fish}': 'tcsh'")


# -- gadget params as options: `gadget run IMAGE --failed` ------------------------------
FLAGS_PROGRAM = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
    __u32 pid;
    __u32 level;
    bool loud;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(flags, events, event);

const volatile __u32 level = 1;
GADGET_PARAM(level);
const volatile bool loud = false;
GADGET_PARAM(loud);

SEC("tracepoint/syscalls/sys_enter_getppid")
int flags_enter(void *ctx)
{
    struct event *e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->level = level;
    e->loud = loud;
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

FLAGS_YAML = """\
name: flags
description: params as flags
datasources:
  flags:
    fields:
      pid: {}
params:
  ebpf:
    level:
      key: level
      defaultValue: "1"
      description: A number
    loud:
      key: loud
      defaultValue: "false"
      description: A switch
"""


@pytest.fixture
def flags_gadget(tmp_path: Path, clang_available: None) -> Path:
    d = tmp_path / "flags"
    d.mkdir()
    (d / "program.bpf.c").write_text(FLAGS_PROGRAM)
    (d / "gadget.yaml").write_text(FLAGS_YAML)
    return d


@contextlib.contextmanager
def _getppid_loop():
    """Something that calls getppid(2) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", "import os, time\nwhile True:\n"
                             "    os.getppid(); time.sleep(0.01)"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def test_params_as_options_after_the_image(flags_gadget: Path, tmp_path: Path) -> None:
    need_root()
    store = tmp_path / "s"
    run_gadget("build", str(flags_gadget), "-t", "flags:dev", "--arch", "amd64", store=store)
    with _getppid_loop():
        for args, level, loud in ((["--level", "42", "--loud"], 42, True),
                                  (["--loud=false", "--level=7"], 7, False),
                                  (["--loud", "-p", "level=3"], 3, True),
                                  ([], 1, False)):
            res = run_gadget("run", "flags:dev", *args, "--host", "--count", "1", "-o", "json",
                             "--timeout", "20", store=store)
            event = json.loads(res.stdout.splitlines()[0])
            assert (event["level"], event["loud"]) == (level, loud), (args, res)


def test_params_as_options_errors(flags_gadget: Path, tmp_path: Path) -> None:
    need_root()
    store = tmp_path / "s"
    run_gadget("build", str(flags_gadget), "-t", "flags:dev", "--arch", "amd64", store=store)
    cases = [
        (["--levle", "4"], "error: no such option: --levle (not an option of gadget run, see "
                           "'gadget run --help', nor a param of flags:dev: --level, --loud)"),
        (["--level"], "error: --level needs a value (--level VALUE or --level=VALUE): it is a "
                      "uint32 param"),
        (["--level=-1"], "error: --level=-1: out of range for a 32-bit unsigned value"),
        (["--loud=maybe"], "error: --loud=maybe: expected true or false"),
        (["extra"], "error: unexpected argument 'extra': gadget run takes one image"),
    ]
    for args, first in cases:
        res = run_gadget("run", "flags:dev", *args, "--timeout", "1", store=store, check=False)
        assert res.returncode == 2 and res.stderr.startswith(first), (args, res)
        assert "Traceback" not in res.stderr
    res = run_gadget("run", "--level", "4", "flags:dev", store=store, check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: --level: the image comes first, then the gadget's params")


def test_inspect_shows_params_as_run_takes_them(flags_gadget: Path, tmp_path: Path) -> None:
    store = tmp_path / "s"
    run_gadget("build", str(flags_gadget), "-t", "flags:dev", store=store)
    text = run_gadget("inspect", "flags:dev", store=store).stdout
    params = text.split("Params (gadget run IMAGE --KEY VALUE):\n", 1)[1].splitlines()
    assert [line.split()[:4] for line in params] == [
        ["--level", "uint32", "default", "1"], ["--loud", "bool", "default", "false"]]
    info = run_gadget("inspect", "flags:dev", "--format", "json", store=store).json()
    assert [(p["key"], p["type"], p["default"]) for p in info["params"]] == [
        ("level", "uint32", "1"), ("loud", "bool", "false")]


# -- one output option: -o/--output columns|json|jsonpretty|yaml on every command ---------
OUTPUT_LINE = "-o, --output [columns|json|jsonpretty|yaml]"


def _help(*cmd: str) -> str:
    return run_gadget(*cmd, "--help").stdout


def test_every_command_that_prints_a_result_takes_the_same_output_option() -> None:
    with_output = ["build", "init", "list", "inspect", "prune", "validate", "run", "test", "publish",
                   "push", "pull", "copy", "export", "import", "registry-check", "keygen", "sign",
                   "verify", "containers", "check", "version", ("btf", "import"), ("btf", "list")]
    for cmd in with_output:
        argv = (cmd,) if isinstance(cmd, str) else cmd
        text = _help(*argv)
        assert OUTPUT_LINE in text, argv
        assert "--format" not in text, argv  # the old spelling is hidden
    # -o means the output format or nothing: no command gives it another meaning
    for cmd in ("tag", "rm", "login", "logout", "completion"):
        assert " -o" not in _help(cmd), cmd


def test_output_values_and_the_old_format_spelling(tmp_path: Path) -> None:
    store = tmp_path / "s"
    make_image(store, "reg.example.com/team/out:v1")
    pretty = run_gadget("list", "-o", "jsonpretty", store=store).stdout
    rows = json.loads(pretty)
    assert [r["reference"] for r in rows] == ["reg.example.com/team/out:v1"]
    one = run_gadget("list", "--output", "json", store=store).stdout
    assert one.count("\n") == 1 and json.loads(one) == rows
    assert load_yaml(run_gadget("list", "-o", "yaml", store=store).stdout) == rows
    assert run_gadget("list", "--format", "json", store=store).stdout == pretty
    columns = run_gadget("list", store=store).stdout
    assert columns.splitlines()[0].split() == ["REPOSITORY", "TAG", "DIGEST", "CREATED"]
    assert run_gadget("list", "--format", "table", store=store).stdout == columns
    assert run_gadget("list", "-o", "columns", store=store).stdout == columns
    doc = load_yaml(run_gadget("inspect", "reg.example.com/team/out:v1", "-o", "yaml", store=store).stdout)
    assert doc["digest"] == rows[0]["digest"]
    res = run_gadget("list", "--format", "json", "-o", "yaml", store=store, check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: give -o/--output only (--format is its old spelling)")
    res = run_gadget("list", "-o", "table", store=store, check=False)
    assert res.returncode == 2 and res.stderr.startswith(
        "error: Invalid value for '-o' / '--output': 'table' is not one of 'columns', 'json', "
        "'jsonpretty', 'yaml'.")


def test_build_o_is_the_output_format_and_objects_go_to_output_dir(tiny_gadget: Path,
                                                                   tmp_path: Path) -> None:
    res = run_gadget("build", str(tiny_gadget), "-o", str(tmp_path / "objs"), "--no-store",
                     check=False)
    assert res.returncode == 2
    assert res.stderr.startswith(f"error: Invalid value for '-o' / '--output': "
                                 f"'{tmp_path / 'objs'}' is not one of columns, json, jsonpretty, "
                                 "yaml: -o/--output is the output format; keep the objects with "
                                 "--output-dir DIR")
    assert not (tmp_path / "objs").exists()
    (tmp_path / "objs").mkdir()
    out = run_gadget("build", str(tiny_gadget), "--arch", "amd64", "--no-store", "--output-dir",
                     str(tmp_path / "objs"), "-o", "json").stdout
    assert out.count("\n") == 1
    assert json.loads(out)["objects"] == {"amd64": str(tmp_path / "objs" / "amd64.bpf.o")}


# -- columns that fit the terminal ------------------------------------------------------
LONG_PATH = "/nonexistent-gadgetsmith/" + "a-rather-long-directory-name/" * 4 + "file"


@pytest.fixture(scope="module")
def trace_open_store(tmp_path_factory: pytest.TempPathFactory, clang_available: None) -> Path:
    store = tmp_path_factory.mktemp("cols") / "s"
    run_gadget("build", str(SAMPLES / "trace_open"), "-t", "trace_open:dev", "--arch", "amd64",
               store=store)
    return store


def _run_cat(store: Path, *args: str, env: dict[str, str] | None = None,
             tty: bool = False) -> list[str]:
    """gadget run trace_open:dev --host ... while cat opens LONG_PATH; the output lines.
    ``tty``: its standard output is a pseudo-terminal (as in a shell), not a pipe."""
    master = slave = -1
    if tty:
        master, slave = pty.openpty()
    proc = subprocess.Popen([GADGET, "run", "trace_open:dev", "--host", "-F", "proc.comm==cat",
                             "--timeout", "6", *args],
                            stdout=slave if tty else subprocess.PIPE, text=True,
                            env={**os.environ, "GADGETSMITH_STORE": str(store), **(env or {})})
    chunks: list[bytes] = []
    reader = None
    if tty:
        os.close(slave)

        def drain() -> None:  # the pty's buffer is small: read while the gadget writes
            with contextlib.suppress(OSError):  # EIO once the gadget has exited
                while data := os.read(master, 65536):
                    chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    try:
        for _ in range(20):
            time.sleep(0.5)
            subprocess.run(["cat", LONG_PATH], capture_output=True)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        if reader is not None:
            reader.join(timeout=10)
            os.close(master)
    if tty:
        out = b"".join(chunks).decode()
    assert proc.returncode == 0, out
    return out.splitlines()


def test_columns_fit_the_terminal_width(trace_open_store: Path) -> None:
    need_root()
    lines = _run_cat(trace_open_store, env={"COLUMNS": "72"}, tty=True)
    header, rows = lines[0], [line for line in lines[1:] if "/nonexistent-g" in line]
    assert header.split() == ["COMM", "PID", "TID", "ERROR", "FD", "FLAGS", "MODE", "FNAME"]
    assert rows, lines
    starts = [header.index(t) for t in header.split()]
    for row in rows:
        assert len(row) <= 72, row
        # every cell starts where its title does: no value runs into the next column
        assert all(row[s - 1] == " " for s in starts[1:]), (header, row)
        assert row[starts[-1]:].startswith("/nonexistent-g") and row.endswith("…")


def test_long_paths_are_whole_without_a_narrow_terminal(trace_open_store: Path) -> None:
    need_root()
    lines = _run_cat(trace_open_store, env={"COLUMNS": "400"}, tty=True)
    assert any(line.endswith(f" {LONG_PATH}") for line in lines), lines
    for env in ({}, {"COLUMNS": "72"}):  # a pipe: nothing is cut, whatever COLUMNS says
        lines = _run_cat(trace_open_store, env=env)
        assert any(line.endswith(f" {LONG_PATH}") for line in lines), lines
        assert not any("…" in line for line in lines)


def test_host_runs_show_no_empty_runtime_column(trace_open_store: Path) -> None:
    need_root()
    lines = _run_cat(trace_open_store)
    assert "RUNTIME.CONTAINERNAME" not in lines[0] and lines[0].startswith("COMM "), lines[0]
    lines = _run_cat(trace_open_store, "--fields", "runtime.containerName,comm,fname")
    assert lines[0].split() == ["RUNTIME.CONTAINERNAME", "COMM", "FNAME"], lines[0]


# -- exit codes: README's table ---------------------------------------------------------
README_TEXT = (REPO / "README.md").read_text()


def test_exit_codes_are_the_ones_readme_documents(tmp_path: Path) -> None:
    table = README_TEXT.split("| Code | Meaning |", 1)[1].split("\n\n", 1)[0]
    assert [row.split("|")[1].strip() for row in table.splitlines()[2:]] == ["0", "1", "2", "3",
                                                                           "130"]
    store = tmp_path / "s"
    policy = tmp_path / "policy.yaml"
    policy.write_text("allowedGadgets: [reg.example.com/ok/*]\n")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "program.bpf.c").write_text("int x;\n")
    (bad / "gadget.yaml").write_text("name: [unclosed\n")
    cases = [
        (0, ("version",), ""),
        (1, ("inspect", "nosuch:v1"), "error: unknown reference 'nosuch:v1'"),
        (2, ("list", "--bogus"), "error: No such option '--bogus'."),
        (2, ("build", str(bad), "--no-store"), f"error: {bad / 'gadget.yaml'}:2: malformed YAML"),
        (3, ("pull", "--policy", str(policy), "evil.example.com/x:v1"), "error: "),
    ]
    for code, args, first in cases:
        res = run_gadget(*args, store=store, check=False)
        assert res.returncode == code, (args, res)
        assert res.stderr.startswith(first) and "Traceback" not in res.stderr, (args, res)


def _children_named(pid: int, prefix: str) -> list[int]:
    """Descendants of ``pid`` whose comm starts with ``prefix``."""
    parents: dict[int, int] = {}
    comms: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            comm = text[text.index("(") + 1:text.rindex(")")]
            ppid = int(text[text.rindex(")") + 2:].split()[1])
            child = int(stat.parent.name)
            parents[child], comms[child] = ppid, comm
    def descends(p: int) -> bool:
        while p in parents:
            p = parents[p]
            if p == pid:
                return True
        return False
    return [p for p, c in comms.items() if c.startswith(prefix) and descends(p)]


def test_ctrl_c_during_a_build_exits_130_and_leaves_the_store_clean(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) while clang runs: one line, exit 130,
    no image, no temporary blob, and the store works for the next command."""
    import shutil
    import signal

    src = tmp_path / "trace_open"
    shutil.copytree(SAMPLES / "trace_open", src)
    with (src / "program.bpf.c").open("a") as f:  # not a build any cache has seen
        f.write(f"\n/* {tmp_path.name} {time.time_ns()} */\n")
    store = tmp_path / "store"
    proc = subprocess.Popen([GADGET, "--store", str(store), "build", str(src), "-t", "ctrlc:v1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _children_named(proc.pid, "clang"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no clang started in 120 s"
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in err, err
    leftovers = [p for p in store.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    listed = run_gadget("list", "-o", "json", store=store)
    assert "ctrlc" not in listed.stdout, listed.stdout
    run_gadget("build", str(src), "-t", "ctrlc:v1", "--arch", "amd64", store=store)
    assert "ctrlc" in run_gadget("list", store=store).stdout
