"""`gadget validate` / `gadget metadata` and `gadget run` describe the same fields.

For every sample gadget, and for a gadget with every kind of field the runtime decodes
(nested structs and unions, anonymous members, integer arrays, short and long char
arrays, enums and bit sets, bool, floats, pointers, gadget_timestamp, gadget_process with
its mntns_id, gadget_l4endpoint_t, errno/signal/syscall/flags/mode/bytes/duration/uid/gid),
the names and kinds the object model reports, and the fields `gadget metadata generate`
writes, are exactly the keys and value types of the events `gadget run` prints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ..conftest import SAMPLES, TINY_PROGRAM, load_yaml, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available", "root")

FIELDS_PROGRAM = r"""
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum fk_color { FK_RED = 1, FK_BLUE = 2 };
enum fk_perm_set { FK_READ = 1, FK_WRITE = 2, FK_EXEC = 4 };

struct fk_inner {
	__u16 port;
	__s8 deltas[3];
	char label[8];
	struct {
		__u32 depth;
		gadget_uid owner_raw;
	} deep;
	union {
		__u32 word;
		__u16 halves[2];
	};
};

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	struct gadget_l4endpoint_t src;
	gadget_errno error_raw;
	gadget_signal sig_raw;
	gadget_syscall syscall_raw;
	gadget_file_flags flags_raw;
	gadget_file_mode mode_raw;
	gadget_bytes size_raw;
	gadget_duration took_raw;
	gadget_netns_id netns_id;
	gadget_gid group_id;
	__u32 counts[4];
	__u64 big[2];
	__u8 hash[6];
	char name[32];
	char path[128];
	struct fk_inner inner;
	enum fk_color color;	/* no _raw: the number only, as in ig */
	enum fk_color shade_raw;
	enum fk_perm_set perm_raw;
	bool ok;
	float ratio;
	double scale;
	void *where;
	__u32 __private;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(fields, events, event);

SEC("tracepoint/syscalls/sys_enter_getpid")
int fk_getpid(void *ctx)
{
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->src.version = 4;
	e->src.port = 8080;
	e->error_raw = 2;
	e->sig_raw = 10;
	e->syscall_raw = 39;
	e->flags_raw = 0x80000;
	e->mode_raw = 0644;
	e->size_raw = 4096;
	e->took_raw = 1500000;
	e->counts[1] = 7;
	__builtin_memcpy(e->name, "fields", 7);
	e->inner.deltas[2] = -1;
	e->color = FK_BLUE;
	e->shade_raw = FK_RED;
	e->perm_raw = FK_READ | FK_EXEC;
	e->ok = true;
	e->ratio = 0.5;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

def _has_wasm(d: Path) -> bool:
    """A WASM module adds fields and data sources to the object's: test_wasm_run.py and the
    samples' specs check those gadgets."""
    return (d / "build.yaml").exists() and "wasm:" in (d / "build.yaml").read_text()


SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir()
                      if (p / "program.bpf.c").exists() and not _has_wasm(p))
GADGETS = [*SAMPLE_NAMES, "fields"]

#: what a decoded value of each field kind is, in Python and in JSON
KIND_TYPES: dict[str, type] = {
    "bool": bool, "string": str, "bytes": str, "array": list, "enum": int,
    "float32": float, "float64": float,
    **{f"{s}int{n}": int for s in ("", "u") for n in (8, 16, 32, 64)},
}
#: enrichment values that are mappings themselves (not nested fields): none since
#: k8s.podLabels is ig's "k=v,k2=v2" string
MAPPING_VALUES: set[str] = set()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Every gadget built once (this host's arch) into one store; name -> source dir."""
    work = tmp_path_factory.mktemp("dsmodel")
    store = work / "store"
    dirs = {name: SAMPLES / name for name in SAMPLE_NAMES}
    dirs["fields"] = work / "fields"
    dirs["fields"].mkdir()
    (dirs["fields"] / "program.bpf.c").write_text(FIELDS_PROGRAM)
    for name, d in dirs.items():
        run_gadget("build", str(d), "-t", f"{name}:test", "--arch", "amd64", store=store)
    return store, dirs


@contextmanager
def activity() -> Iterator[None]:
    """Something for every gadget to see: getpid, opens, execs, signals."""
    stop = threading.Event()
    sleeper = subprocess.Popen(["sleep", "300"])

    def loop() -> None:
        while not stop.is_set():
            os.getpid()
            Path("/etc/hostname").read_bytes()
            subprocess.run(["/bin/true"], check=False)
            os.kill(sleeper.pid, signal.SIGCONT)
            stop.wait(0.05)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        sleeper.kill()
        sleeper.wait()


def flat(ev: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in ev.items():
        name = prefix + k
        if isinstance(v, dict) and name not in MAPPING_VALUES:
            out.update(flat(v, name + "."))
        else:
            out[name] = v
    return out


def at(ev: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        ev = ev[part]
    return ev


def run_events(name: str, store: Path) -> list[dict[str, Any]]:
    with activity():
        res = run_gadget("run", f"{name}:test", "--host", "-o", "json", "--count", "2",
                         "--timeout", "30", "--map-fetch-interval", "1", store=store)
    out: list[dict[str, Any]] = []
    for line in res.stdout.splitlines():
        doc = json.loads(line)
        out += doc if isinstance(doc, list) else [doc]  # iterators and map iterators: arrays
    return out


@pytest.mark.parametrize("name", GADGETS)
def test_run_decodes_the_fields_validate_and_metadata_report(built, name: str) -> None:
    from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS
    from gadgetsmith.runtime.gadget import load_image
    from gadgetsmith.toolchain.metadata.objinfo import analyze

    store, dirs = built
    obj = analyze(load_image(f"{name}:test", store)[0])  # what validate / metadata read
    generated = load_yaml(run_gadget("metadata", "generate", str(dirs[name])).stdout)
    assert list(generated["datasources"]) == list(obj.datasources)
    [(dsname, ds)] = obj.datasources.items()
    top = [f.name for f in ds.fields if "." not in f.name]
    assert list(generated["datasources"][dsname]["fields"]) == top

    values = [f for f in ds.fields if f.kind != "struct"]
    structs = [f for f in ds.fields if f.kind == "struct"]
    want = ({f.name for f in values} - ds.removed) | set(ds.derived)
    assert ds.enriched
    events = run_events(name, store)
    assert events, f"{name}: no events"
    for ev in events:
        got = flat(ev)
        assert set(EMPTY_FIELDS) <= set(got)  # the container fields validate accepts
        assert sorted(set(got) - set(EMPTY_FIELDS)) == sorted(want)
        assert set(ev) - {"runtime", "k8s"} == set(top) | {d for d in ds.derived if "." not in d}
        for f in values:
            if f.name in ds.removed:
                continue
            kind_type = type(got[f.name])
            if KIND_TYPES[f.kind] is float and kind_type is int:
                kind_type = float  # a whole float is written 0, as ig (Go) writes it
            assert kind_type is KIND_TYPES[f.kind], (f.name, f.kind, got[f.name])
            if f.kind == "array":
                assert len(got[f.name]) == f.nelems
        for f in structs:
            if f.name not in ds.removed:
                assert isinstance(at(ev, f.name), dict), f.name
        for d in ds.derived:
            assert isinstance(got[d], str), (d, got[d])
    if name == "fields":
        ev = flat(events[0])
        kinds = {f.name: f.kind for f in ds.fields}
        assert {kinds[n] for n in ("proc", "src", "src.addr_raw", "inner", "inner.deep")} == \
            {"struct"}
        assert (kinds["name"], kinds["path"], kinds["proc.comm"]) == ("string",) * 3
        assert (kinds["counts"], kinds["inner.deltas"], kinds["color"]) == ("array", "array", "enum")
        assert "__private" not in kinds and "inner..word" in kinds  # anonymous union member: ""
        assert ev["name"] == "fields" and ev["counts"] == [0, 7, 0, 0]
        assert ev["inner.deltas"] == [0, 0, -1] and ev["src.port"] == 8080
        # ig's l4endpoint formatter: the address as text instead of addr_raw
        assert (ev["src.addr"], ev["src.proto"], ev["src.version"]) == ("0.0.0.0", "HOPOPT", 4)
        assert ds.removed == {"src.addr_raw", "src.addr_raw.v4", "src.addr_raw.v6",
                              "src.addr_raw.v6_raw"} and not any(k.startswith("src.addr_raw") for k in ev)
        assert (ev["error"], ev["sig"], ev["syscall"], ev["mode"]) == \
            ("ENOENT", "SIGUSR1", "SYS_GETPID", "-rw-r--r--")
        assert (ev["color"], ev["shade"], ev["perm"], ev["ok"], ev["ratio"]) == \
            (2, "FK_RED", "FK_READ|FK_EXEC", True, 0.5)
        assert "color_str" not in ev and "where" not in ev  # ig: no name, a pointer no field
        assert ev["proc.mntns_id"] > 0 and ev["timestamp"].endswith("Z")


def test_run_refuses_a_data_source_validate_reports_broken(tmp_path: Path) -> None:
    """The object model's problems stop `gadget run` before loading, in validate's words."""
    from gadgetsmith.runtime.bpf.loader import host_arch
    from gadgetsmith.toolchain.build.compile import compile_arches, find_toolchain

    (tmp_path / "program.bpf.c").write_text(TINY_PROGRAM.replace(
        "GADGET_TRACER(tiny, events, event);",
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);"
        " __type(key, __u32); __type(value, __u32); } h SEC(\".maps\");\n"
        "GADGET_TRACER(tiny, h, event);"))
    objs = compile_arches(tmp_path / "program.bpf.c", [host_arch()], tmp_path, find_toolchain(),
                          cwd=tmp_path)
    res = run_gadget("run", str(objs[host_arch()]), "--host", "--timeout", "1", check=False)
    assert res.returncode == 1, res
    assert res.stderr.strip().splitlines()[-1] == (
        "error: data source 'tiny' (GADGET_TRACER): tracer map 'h' is a hash map: tracers need "
        "a ring buffer or perf event array (GADGET_TRACER_MAP(h, size))"), res
