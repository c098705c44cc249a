"""USDT probes (sys/sdt.h) through ``usdt/PATH:PROVIDER:NAME`` sections: a real program
with a probe, a gadget reading its arguments with BPF_USDT, on the host and in a
container; the SDK's include path finds <bpf/usdt.bpf.h> for both architectures."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from ..conftest import need_root, run_gadget, skip_or_fail

pytestmark = pytest.mark.usefixtures("clang_available")

# the probes pass an int, a negative long and a string; "loop" ticks every 20 ms
PROBE_C = r"""
#include <sys/sdt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void guarded_tick(int i, long neg, const char *word);

int main(int argc, char **argv)
{
    const char *word = argc > 1 ? argv[1] : "none";
    int loop = argc > 2 && strcmp(argv[2], "loop") == 0;
    int n = argc > 2 && !loop ? atoi(argv[2]) : 3;

    for (int i = 0; loop || i < n; i++) {
        long neg = -1000L * (i + 1);
        DTRACE_PROBE3(gsdemo, tick, i, neg, word);
        guarded_tick(i, neg, word);
        if (loop)
            usleep(20000);
    }
    return 0;
}
"""

# a probe with a semaphore (a file of its own: _SDT_HAS_SEMAPHORES applies to all the
# probes of a compilation unit), guarded by sys/sdt.h's is-enabled check: it only fires
# while the kernel has raised the semaphore for an attached uprobe
GUARDED_C = r"""
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short gsdemo_guarded_semaphore __attribute__((unused))
    __attribute__((section(".probes")));

void guarded_tick(int i, long neg, const char *word)
{
    if (gsdemo_guarded_semaphore)
        STAP_PROBE3(gsdemo, guarded, i, neg, word);
}
"""

GADGET = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/mntns.h>
#include <gadget/mntns_filter.h>
#include <gadget/types.h>

struct event {
    gadget_mntns_id mntns_id;
    __u32 pid;
    __s32 index;
    __s64 neg;
    char word[32];
};

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(ticks, events, event);

SEC("usdt/TARGET")
int BPF_USDT(on_tick, int index, long neg, const char *word)
{
    __u64 mntns_id = gadget_get_current_mntns_id();
    struct event *e;

    if (gadget_should_discard_mntns_id(mntns_id))
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->mntns_id = mntns_id;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->index = index;
    e->neg = neg;
    bpf_probe_read_user_str(e->word, sizeof(e->word), word);
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# a usdt program written without <bpf/usdt.bpf.h>: libbpf has nowhere to put the
# argument specs
NO_USDT_H = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>

struct event {
    __u32 pid;
};

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(ticks, events, event);

SEC("usdt/TARGET")
int on_tick(void *ctx)
{
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# an Inspektor Gadget style source: arguments through <gadget/usdt_argument.h>'s
# usdt_get_argument() only (as IG's trace_gc does), each value copied out before the next
# call reuses the per-CPU slot
IG_GADGET = """\
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/mntns.h>
#include <gadget/mntns_filter.h>
#include <gadget/types.h>
#include <gadget/usdt_argument.h>

struct event {
    gadget_mntns_id mntns_id;
    __u32 pid;
    __s32 index;
    __s64 neg;
    char word[32];
};

GADGET_TRACER_MAP(events, 256 * 1024);
GADGET_TRACER(ticks, events, event);

SEC("usdt/TARGET")
int on_tick(struct pt_regs *ctx)
{
    __u64 mntns_id = gadget_get_current_mntns_id();
    struct event *e;
    __u64 *arg;

    if (gadget_should_discard_mntns_id(mntns_id))
        return 0;
    e = gadget_reserve_buf(&events, sizeof(*e));
    if (!e)
        return 0;
    e->mntns_id = mntns_id;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    arg = usdt_get_argument(ctx, 0);
    e->index = arg ? (__s32)*arg : -1;
    arg = usdt_get_argument(ctx, 1);
    e->neg = arg ? (__s64)*arg : 0;
    arg = usdt_get_argument(ctx, 2);
    if (arg)
        bpf_probe_read_user_str(e->word, sizeof(e->word), (const char *)*arg);
    gadget_submit_buf(ctx, &events, e, sizeof(*e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

PROBE_NAME = "gsusdtprobe"


def _compile(out: Path, *flags: str) -> None:
    from gadgetsmith.toolchain.build.compile import find_toolchain

    src = out.parent / "src"
    src.mkdir(exist_ok=True)
    (src / "probe.c").write_text(PROBE_C)
    (src / "guarded.c").write_text(GUARDED_C)
    subprocess.run([find_toolchain().clang, "-O2", *flags, "-o", str(out), str(src / "probe.c"),
                    str(src / "guarded.c")], check=True)


def _gadget_dir(tmp: Path, name: str, target: str, source: str = GADGET) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "program.bpf.c").write_text(source.replace("TARGET", target))
    (d / "gadget.yaml").write_text(f"name: {name}\ndescription: usdt test gadget\n")
    return d


@pytest.fixture(scope="module")
def probe_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe program, dynamically linked (a PIE), in a directory of its own."""
    include = Path("/usr/include") / f"{os.uname().machine}-linux-gnu" / "sys/sdt.h"
    if not include.exists() and not Path("/usr/include/sys/sdt.h").exists():
        skip_or_fail("sys/sdt.h is missing (apt-get install systemtap-sdt-dev)")
    d = tmp_path_factory.mktemp("usdtbin") / "bin"
    d.mkdir()
    _compile(d / PROBE_NAME)
    # the probes are in the binary's notes, with their arguments' locations
    notes = subprocess.run(["readelf", "-n", str(d / PROBE_NAME)], capture_output=True,
                           text=True).stdout
    assert "Name: tick" in notes and "Name: guarded" in notes, notes
    return d / PROBE_NAME


def test_sdk_builds_a_usdt_gadget_for_both_arches(tmp_path: Path) -> None:
    """<bpf/usdt.bpf.h> is found through the build's include path (amd64 and arm64),
    and the object carries the usdt section and libbpf's USDT maps."""
    from gadgetsmith.runtime.bpf.objmodel import GadgetObject

    d = _gadget_dir(tmp_path, "usdtbuild", "/usr/bin/app:gsdemo:tick")
    out = tmp_path / "out"
    out.mkdir()
    run_gadget("build", str(d), "--no-store", "--output-dir", str(out))
    for arch in ("amd64", "arm64"):
        obj = GadgetObject((out / f"{arch}.bpf.o").read_bytes())
        assert obj.programs["on_tick"] == "usdt//usr/bin/app:gsdemo:tick", arch
        assert {"__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"} <= set(obj.maps), arch


def _check_ticks(rows: list[dict], pid: int, word: str) -> None:
    """Rows of one process with the values it passed: consecutive indexes from the
    loop, neg = -1000 * (index + 1), the string."""
    assert len(rows) == 3, rows
    assert {r["pid"] for r in rows} == {pid}
    assert {r["word"] for r in rows} == {word}
    idx = [r["index"] for r in rows]
    assert idx == list(range(idx[0], idx[0] + 3)), idx
    assert [r["neg"] for r in rows] == [-1000 * (i + 1) for i in idx]


@pytest.mark.parametrize(("by", "probe"), [("path", "tick"), ("program-name", "tick"),
                                           ("path", "guarded")])
def test_usdt_run_shows_the_arguments_passed(probe_bin: Path, tmp_path: Path, by: str,
                                             probe: str) -> None:
    need_root()
    target = str(probe_bin) if by == "path" else PROBE_NAME
    d = _gadget_dir(tmp_path, "usdtrun", f"{target}:gsdemo:{probe}")
    word = f"gs-{uuid.uuid4().hex[:8]}"
    env = {"PATH": f"{probe_bin.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    proc = subprocess.Popen([str(probe_bin), word, "loop"])
    try:
        res = run_gadget("--debug", "run", str(d), "--host", "-F", f"word=={word}",
                         "--count", "3", "--timeout", "30", "-o", "json", env=env)
    finally:
        proc.kill()
        proc.wait()
    _check_ticks([json.loads(line) for line in res.stdout.splitlines()], proc.pid, word)
    assert (f"debug: program on_tick (usdt/{target}:gsdemo:{probe}): attached to "
            f"{probe_bin} for the host") in res.stderr


def _btf_types(obj: Path) -> dict[int, dict]:
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(obj), "-j"], check=True,
                         capture_output=True, text=True).stdout
    return {t["id"]: t for t in json.loads(out)["types"]}


@pytest.mark.parametrize("usdt_h_first", [False, True])
def test_sdk_builds_ig_usdt_argument_gadgets_with_what_ig_replaces(tmp_path: Path,
                                                                   usdt_h_first: bool) -> None:
    """<gadget/usdt_argument.h> builds for amd64 and arm64 (alone, and after the gadget's
    own <bpf/usdt.bpf.h>), and the object keeps what ig's extension needs: a global
    function __usdt_get_argument(struct pt_regs *ctx, u64 arg_idx) returning bool, with
    BTF, and the per-CPU array __usdt_args_buffer (u32 -> u64, one entry). Alone, it has
    no LINUX_HAS_BPF_COOKIE __kconfig extern, which only libbpf fills in."""
    from gadgetsmith.runtime.bpf.objmodel import GadgetObject

    source = IG_GADGET
    if usdt_h_first:
        source = source.replace("#include <gadget/buffer.h>\n",
                                "#include <bpf/usdt.bpf.h>\n#include <gadget/buffer.h>\n")
    d = _gadget_dir(tmp_path, "usdtigbuild", "/usr/bin/app:gsdemo:tick", source)
    out = tmp_path / "out"
    out.mkdir()
    run_gadget("build", str(d), "--no-store", "--output-dir", str(out))
    for arch in ("amd64", "arm64"):
        path = out / f"{arch}.bpf.o"
        obj = GadgetObject(path.read_bytes())
        assert obj.programs == {"on_tick": "usdt//usr/bin/app:gsdemo:tick"}, arch
        sym = next(s for s in obj.elf.symbols if s.name == "__usdt_get_argument")
        assert (sym.bind, sym.type) == (1, 2), (arch, sym)  # STB_GLOBAL, STT_FUNC
        assert obj.elf.sections[sym.section_index].name == ".text", arch
        types = _btf_types(path)
        func = next(t for t in types.values() if t["kind"] == "FUNC"
                    and t["name"] == "__usdt_get_argument")
        assert func["linkage"] == "global", arch
        proto = types[func["type_id"]]
        assert [p["name"] for p in proto["params"]] == ["ctx", "arg_idx"], arch
        ctx_t = types[proto["params"][0]["type_id"]]
        assert ctx_t["kind"] == "PTR" and types[ctx_t["type_id"]]["name"] == "pt_regs", arch
        assert obj.btf.size_of(proto["params"][1]["type_id"]) == 8, arch
        assert obj.btf.resolve(proto["ret_type_id"]).is_bool, arch
        buf = obj.maps["__usdt_args_buffer"]
        assert (buf.type_name, buf.key_size, buf.value_size, buf.max_entries) == \
            ("percpu_array", 4, 8, 1), (arch, buf)
        # our runtime's fallback: libbpf's argument maps
        assert {"__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"} <= set(obj.maps), arch
        if not usdt_h_first:
            assert obj.btf.datasec(".kconfig") is None, arch
            assert "LINUX_HAS_BPF_COOKIE" not in {s.name for s in obj.elf.symbols}, arch


def test_ig_style_gadget_reads_usdt_arguments_under_gadget_run(probe_bin: Path,
                                                               tmp_path: Path) -> None:
    """usdt_get_argument() in our runtime: the placeholder is not replaced, so the values
    come from libbpf's argument specs; the events carry exactly what the probe passed."""
    need_root()
    d = _gadget_dir(tmp_path, "usdtigrun", f"{probe_bin}:gsdemo:tick", IG_GADGET)
    word = f"ig-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([str(probe_bin), word, "loop"])
    try:
        res = run_gadget("run", str(d), "--host", "-F", f"word=={word}", "--count", "3",
                         "--timeout", "30", "-o", "json")
    finally:
        proc.kill()
        proc.wait()
    _check_ticks([json.loads(line) for line in res.stdout.splitlines()], proc.pid, word)


@pytest.mark.parametrize("case", ["no-such-probe", "no-such-provider", "no-notes",
                                  "not-elf", "no-usdt-h", "bad-section"])
def test_usdt_attach_errors_are_one_line(probe_bin: Path, tmp_path: Path, case: str) -> None:
    need_root()
    target, source = {
        "no-such-probe": (f"{probe_bin}:gsdemo:no_such_probe", GADGET),
        "no-such-provider": (f"{probe_bin}:other:tick", GADGET),
        "no-notes": ("/bin/true:gsdemo:tick", GADGET),
        "not-elf": ("/etc/os-release:gsdemo:tick", GADGET),
        "no-usdt-h": (f"{probe_bin}:gsdemo:tick", NO_USDT_H),
        "bad-section": (f"{probe_bin}:tick", GADGET),
    }[case]
    d = _gadget_dir(tmp_path, "usdtbad", target, source)
    res = run_gadget("run", str(d), "--host", "--timeout", "1", check=False)
    assert "Traceback" not in res.stderr
    # (containers that other tests run here have their own copies, warned about apart)
    lines = [x for x in res.stderr.strip().splitlines() if not x.startswith("warning: container ")]
    assert len(lines) == 1, lines
    if case.startswith("no-such-") or case == "no-notes":
        # a probe this host's file does not have is a warning, as in ig; the gadget runs
        assert res.returncode == 0, res
        assert lines[0].startswith(f"warning: program on_tick (usdt/{target}) is not attached "
                                   "on this host: "), lines
        why = lines[0].split("on this host: ", 1)[1]
    else:
        assert res.returncode == 1, res
        assert lines[0].startswith(f"error: program on_tick (usdt/{target}) cannot attach: "), lines
        why = lines[0].split("cannot attach: ", 1)[1]
    true = os.path.realpath("/bin/true")
    if case == "not-elf":  # libbpf's own words after the file's name
        assert why.startswith(f"{os.path.realpath('/etc/os-release')}: ") and "ELF" in why, why
        return
    assert why == {
        "no-such-probe": f"no USDT probe gsdemo:no_such_probe in {probe_bin}",
        "no-such-provider": f"no USDT probe other:tick in {probe_bin}",
        "no-notes": f"no USDT probe gsdemo:tick in {true}",
        "no-usdt-h": "the object has no USDT argument maps (__bpf_usdt_specs, "
                     "__bpf_usdt_ip_to_spec_id): #include <bpf/usdt.bpf.h> in the gadget's "
                     "source and use BPF_USDT or bpf_usdt_arg(), or <gadget/usdt_argument.h> "
                     "and usdt_get_argument()",
        "bad-section": f"section 'usdt/{target}': expected usdt/PATH:PROVIDER:NAME or "
                       "usdt/LIBRARY:PROVIDER:NAME (e.g. usdt/libpython3.11:python:gc__start)",
    }[case]


def test_usdt_in_a_container_probes_its_own_copy(probe_bin: Path, tmp_path: Path) -> None:
    """A statically linked copy (a non-PIE executable) exists only in the container's
    filesystem: the host has no such file (a warning), the container's copy is probed
    through /proc/<pid>/root and its events carry the container's name."""
    from ..podman_util import Podman

    need_root()
    podman = Podman(tmp_path)
    rootfs = tmp_path / "usdtroot"
    rootfs.mkdir()
    _compile(rootfs / "gsprobe", "-static")
    image = podman.import_rootfs(rootfs, "usdt")
    name = f"gs-usdt-{uuid.uuid4().hex[:8]}"
    word = f"ctr-{uuid.uuid4().hex[:8]}"
    try:
        podman.start("/gsprobe", word, "loop", name=name, network="none", image=image)
        pid = podman.pid(name)
        res = run_gadget("--debug", "run", str(_gadget_dir(tmp_path, "usdtctr",
                                                           "/gsprobe:gsdemo:tick")),
                         "-c", name, "--count", "3", "--timeout", "30", "-o", "json",
                         env={"CONTAINERS_CONF": podman.env["CONTAINERS_CONF"]})
    finally:
        podman.cleanup()
        podman.run("rmi", "-f", image, check=False)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert {r["runtime"]["containerName"] for r in rows} == {name}, rows
    _check_ticks(rows, pid, word)
    assert ("warning: program on_tick (usdt//gsprobe:gsdemo:tick) is not attached on this "
            "host: target /gsprobe: no such file") in res.stderr
    assert (f"debug: program on_tick (usdt//gsprobe:gsdemo:tick): attached to "
            f"/proc/{pid}/root/gsprobe for container {name}") in res.stderr
