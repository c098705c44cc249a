"""The C SDK: ABI layout, compat layer, marker symbols, and every sample gadget."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.build.compile import CompileError, compile_arches, compile_program

from ..conftest import SAMPLES, need_tool

HERE = Path(__file__).resolve().parent.parent  # tests/
ARCHES = ("amd64", "arm64")
pytestmark = pytest.mark.usefixtures("clang_available")


def btf_dump(obj: Path) -> str:
    bpftool = need_tool("bpftool")
    return subprocess.run([bpftool, "btf", "dump", "file", str(obj)], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_layout_static_asserts_hold(arch: str, tmp_path: Path) -> None:
    compile_program(HERE / "c" / "layout_test.c", arch, tmp_path / "layout.o")


def test_layout_drift_breaks_the_build(tmp_path: Path) -> None:
    src = (HERE / "c" / "layout_test.c").read_text()
    broken = tmp_path / "drift.c"
    broken.write_text(src.replace("sizeof(struct gadget_process) == 64",
                                  "sizeof(struct gadget_process) == 72"))
    with pytest.raises(CompileError) as err:
        compile_program(broken, "amd64", tmp_path / "drift.o", cwd=tmp_path)
    assert "static assertion failed" in err.value.detail
    assert "drift.c:" in err.value.detail


def test_headers_are_all_present() -> None:
    want = {"macros.h", "types.h", "buffer.h", "mntns.h", "mntns_filter.h", "filter.h",
            "common.h", "core_fixes.bpf.h", "maps.bpf.h", "bits.bpf.h", "filesystem.h",
            "kernel_stack_map.h", "user_stack_map.h", "usdt_argument.h", "sockets-map.h",
            "packetfilter.h", "gpu_types.h", "gpu_bridge_maps.h"}
    have = {p.name for p in (sdk.INCLUDE_ROOT / "gadget").glob("*.h")}
    assert want <= have
    for arch in ARCHES:
        text = (sdk.vmlinux_dir(arch) / "vmlinux.h").read_text()
        assert "#ifndef __VMLINUX_H__" in text
    assert "struct user_pt_regs {" in (sdk.vmlinux_dir("arm64") / "vmlinux.h").read_text()


COMPAT_SRC = """
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <gadget/core_fixes.bpf.h>
__u64 out;
SEC("raw_tracepoint/sys_enter")
int prog(struct bpf_raw_tracepoint_args *ctx)
{
    struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
    out = PT_REGS_PARM6_CORE_SYSCALL(regs) + gadget_get_syscall_arg(regs, 6)
        + bpf_core_type_matches(struct task_struct) + gadget_get_syscall_nr(regs);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_libbpf_12_compat(arch: str, tmp_path: Path) -> None:
    src = tmp_path / "compat.c"
    src.write_text(COMPAT_SRC)
    compile_program(src, arch, tmp_path / "compat.o")


MARKER_SRC = """
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/mntns_filter.h>
struct event { gadget_timestamp timestamp_raw; gadget_pid pid; };
struct k { __u32 a; };
struct v { __u64 n; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8);
         __type(key, struct k); __type(value, struct v); } counts SEC(".maps");
GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(mytracer, events, event);
GADGET_MAPITER(mytop, counts);
GADGET_ITER(procs, gadget_process, it_a, it_b);
const volatile int level = 3;
GADGET_PARAM(level);
SEC("iter/task") int it_a(void *ctx) { return 0; }
SEC("iter/task") int it_b(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_marker_symbols_match_ig_conventions(tmp_path: Path) -> None:
    src = tmp_path / "markers.c"
    src.write_text(MARKER_SRC)
    obj = compile_program(src, "amd64", tmp_path / "markers.o")
    dump = btf_dump(obj)
    vars_ = set(re.findall(r"\] VAR '([^']+)'", dump))
    assert {
        "gadget_tracer_mytracer___events___event",
        "gadget_map_tracer_events",
        "gadget_mapiter_mytop___counts",
        "gadget_iter_procs___gadget_process___it_a___it_b",
        "gadget_param_level",
        "gadget_filter_by_mntns",
    } <= vars_
    # markers are `const void *` globals, as IG's runtime validates
    m = re.search(r"\[(\d+)\] VAR 'gadget_param_level' type_id=(\d+), linkage=global", dump)
    assert m, dump
    ptr = re.search(rf"^\[{m.group(2)}\] PTR '\(anon\)' type_id=(\d+)", dump, re.M)
    assert ptr
    const = re.search(rf"^\[{ptr.group(1)}\] CONST '\(anon\)' type_id=0", dump, re.M)
    assert const, "marker must be pointer -> const -> void"
    # map shapes the runtime replaces
    assert re.search(r"VAR 'gadget_mntns_filter_map'", dump)
    assert re.search(r"VAR 'events_lost_samples'", dump)


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()
                                          if (p / "program.bpf.c").exists()))
def test_sample_compiles_for_both_arches_without_warnings(sample: str, tmp_path: Path) -> None:
    objs = compile_arches(SAMPLES / sample / "program.bpf.c", ARCHES, tmp_path,
                          cwd=SAMPLES / sample)
    assert set(objs) == set(ARCHES)
    for o in objs.values():
        dump = btf_dump(o)
        assert re.search(r"VAR 'gadget_(tracer|iter|mapiter)_", dump), sample


def test_trace_open_differs_per_arch(tmp_path: Path) -> None:
    objs = compile_arches(SAMPLES / "trace_open" / "program.bpf.c", ARCHES, tmp_path)
    amd, arm = (btf_dump(objs[a]) for a in ARCHES)
    assert "ig_open_e" in amd and "ig_open_e" not in arm  # arm64 has no open(2)


def test_samples_pass_the_verifier(tmp_path: Path) -> None:
    """Load (not attach) every sample's amd64 object into this kernel with bpftool."""
    import os

    from ..conftest import need_root, skip_or_fail

    bpftool = need_tool("bpftool")
    need_root("loading BPF programs needs root")
    bpffs = Path("/sys/fs/bpf")
    if not os.path.ismount(bpffs):
        subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=False)
    if not os.path.ismount(bpffs):
        skip_or_fail("bpffs is not mounted and cannot be mounted")
    for sample in sorted(p for p in SAMPLES.iterdir() if (p / "program.bpf.c").exists()):
        obj = compile_program(sample / "program.bpf.c", "amd64", tmp_path / f"{sample.name}.o")
        pin = bpffs / f"gadgetsmith-test-{sample.name}-{os.getpid()}"
        try:
            res = subprocess.run([bpftool, "prog", "loadall", str(obj), str(pin)],
                                 capture_output=True, text=True)
            assert res.returncode == 0, f"{sample.name}: {res.stderr[-2000:]}"
            assert list(pin.iterdir()), sample.name
        finally:
            shutil.rmtree(pin, ignore_errors=True)
