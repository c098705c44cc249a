"""btfgen bundles, kernel BTF archives and `gadget check`, with real Debian kernels.

The kernels are Debian bookworm's 6.1 and 6.12 ``-cloud`` packages for amd64 and arm64
(tests/kernel_packages.py downloads them once into ~/.cache/gadgetsmith/kernels), turned
into a btfhub-layout archive by ``gadget btf import``. Between 6.1 and 6.12 ``struct
inode`` lost ``i_mtime`` (a ``struct timespec64``) for ``i_mtime_sec``/``i_mtime_nsec``:
the test gadgets read one, the other, or pick with ``bpf_core_field_exists``.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from gadgetsmith.runtime.bpf.btf import Btf, LazyBtf
from gadgetsmith.toolchain.btfgen import archive, core

from .. import kernel_packages
from ..conftest import SAMPLES, need_tool, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available")

SDE = "1700000000"

MTIME_PROGRAM = textwrap.dedent(
    """\
    // SPDX-License-Identifier: GPL-2.0
    #include <vmlinux.h>
    #include <bpf/bpf_helpers.h>
    #include <bpf/bpf_core_read.h>
    #include <gadget/buffer.h>
    #include <gadget/macros.h>
    #include <gadget/types.h>

    /* struct inode before 6.6: a struct timespec64 i_mtime */
    struct inode___old {
        struct timespec64 i_mtime;
    } __attribute__((preserve_access_index));

    struct event {
        __s64 mtime;
    };

    GADGET_TRACER_MAP(events, 1024 * 64);
    GADGET_TRACER(mtime, events, event);

    SEC("tracepoint/syscalls/sys_enter_getpid")
    int exe_mtime(void *ctx)
    {
        struct task_struct *task = (struct task_struct *)bpf_get_current_task();
        struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
        struct event *e;
        __s64 t;

    #if defined(MTIME_OLD)
        t = BPF_CORE_READ((struct inode___old *)ino, i_mtime.tv_sec);
    #elif defined(MTIME_NEW)
        t = BPF_CORE_READ(ino, i_mtime_sec);
    #else
        if (bpf_core_field_exists(((struct inode___old *)0)->i_mtime))
            t = BPF_CORE_READ((struct inode___old *)ino, i_mtime.tv_sec);
        else
            t = BPF_CORE_READ(ino, i_mtime_sec);
    #endif
        e = gadget_reserve_buf(&events, sizeof(*e));
        if (!e)
            return 0;
        e->mtime = t;
        gadget_submit_buf(ctx, &events, e, sizeof(*e));
        return 0;
    }

    char LICENSE[] SEC("license") = "GPL";
    """
)

# program types, helpers and map types 6.1 does not have (all came in 6.2-6.4)
NEWER_PROGRAM = textwrap.dedent(
    """\
    // SPDX-License-Identifier: GPL-2.0
    #include <vmlinux.h>
    #include <bpf/bpf_helpers.h>
    #include <bpf/bpf_tracing.h>

    struct {
        __uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, __u64);
    } counts SEC(".maps");

    SEC("tp_btf/cgroup_mkdir")
    int BPF_PROG(on_mkdir, struct cgroup *cgrp, const char *path)
    {
        __u64 *n = bpf_cgrp_storage_get(&counts, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (n)
            (*n)++;
        return 0;
    }

    SEC("netfilter")
    int nf_accept(struct bpf_nf_ctx *ctx)
    {
        return 1;
    }

    SEC("tp_btf/no_such_tracepoint")
    int BPF_PROG(nowhere)
    {
        return 0;
    }

    char LICENSE[] SEC("license") = "GPL";
    """
)


# -- fixtures --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def debs() -> dict[tuple[str, str], Path]:
    return kernel_packages.packages()


@pytest.fixture(scope="session")
def kernels(debs) -> Path:
    """btfhub-layout archive of the four kernels (made by `gadget btf import`, cached)."""
    return kernel_packages.archive_of(debs, run_gadget)


KEYS = {
    ("6.1", "amd64"): "debian/12/x86_64/6.1.0-", ("6.12", "amd64"): "debian/12/x86_64/6.12.",
    ("6.1", "arm64"): "debian/12/arm64/6.1.0-", ("6.12", "arm64"): "debian/12/arm64/6.12.",
}


def _key(kernels: Path, series: str, arch: str) -> str:
    found = [e.key for e in archive.scan_archive(kernels) if e.key.startswith(KEYS[(series, arch)])]
    assert len(found) == 1, found
    return found[0]


def _gadget_dir(tmp: Path, name: str, program: str, define: str | None = None) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "program.bpf.c").write_text(program)
    if define:
        (d / "build.yaml").write_text(f'cflags: ["-D{define}"]\n')
    return d


@pytest.fixture(scope="module")
def mtime_gadgets(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("mtime")
    return {
        "old": _gadget_dir(tmp, "old", MTIME_PROGRAM, "MTIME_OLD"),
        "new": _gadget_dir(tmp, "new", MTIME_PROGRAM, "MTIME_NEW"),
        "guarded": _gadget_dir(tmp, "guarded", MTIME_PROGRAM),
    }


@pytest.fixture(scope="module")
def mtime_objects(mtime_gadgets, tmp_path_factory) -> dict[str, Path]:
    """amd64 objects of the three variants (compiled once for the module)."""
    out = {}
    for name, d in mtime_gadgets.items():
        od = tmp_path_factory.mktemp(f"obj-{name}")
        run_gadget("build", str(d), "--arch", "amd64", "--no-store", "--output-dir", str(od))
        out[name] = od / "amd64.bpf.o"
    return out


@pytest.fixture(scope="module")
def bundled(kernels, tmp_path_factory) -> SimpleNamespace:
    """trace_open built with --btfgen (SOURCE_DATE_EPOCH set) from the four kernels plus,
    when it has BTF, this machine's (`gadget btf import /sys/kernel/btf/vmlinux`)."""
    tmp = tmp_path_factory.mktemp("bundled")
    archive_dir = tmp / "kernels"
    shutil.copytree(kernels, archive_dir)
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        run_gadget("btf", "import", "/sys/kernel/btf/vmlinux", "--archive", str(archive_dir))
    objdir = tmp / "obj"
    objdir.mkdir()
    env = {"SOURCE_DATE_EPOCH": SDE, "GADGETSMITH_BTFGEN_CACHE": str(tmp / "cache")}
    args = ("build", str(SAMPLES / "trace_open"), "-t", "trace_open:btf", "--btfgen",
            "--btfhub-archive", str(archive_dir), "--format", "json", "--output-dir", str(objdir))
    first = run_gadget(*args, store=tmp / "store", env=env).json()
    return SimpleNamespace(archive=archive_dir, store=tmp / "store", objdir=objdir, env=env,
                           args=args, first=first, tmp=tmp)


def _layer_files(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tf:
        return tf.getmembers()


# -- import / list ---------------------------------------------------------------------
def test_import_takes_distribution_arch_and_release_from_the_package(debs, kernels, tmp_path):
    deb = debs[("6.1", "arm64")]  # the smallest package
    res = run_gadget("btf", "import", str(deb), "--archive", str(tmp_path / "a"), "--format", "json")
    (imp,) = res.json()["imported"]
    release = deb.name.split("_", 1)[0].removeprefix("linux-image-")
    assert imp["kernel"] == f"debian/12/arm64/{release}"
    assert imp["path"] == str(tmp_path / "a" / "debian" / "12" / "arm64" / f"{release}.btf.tar.xz")
    btf = archive.read_btf(Path(imp["path"]))
    assert archive.btf_arch(btf) == "arm64" and len(btf) == imp["btfSize"]
    # the same bytes as the session's archive, and a BTF that bpftool reads
    assert btf == archive.read_btf(kernels / (imp["kernel"] + ".btf.tar.xz"))
    bpftool = need_tool("bpftool")
    plain = tmp_path / "k.btf"
    plain.write_bytes(btf)
    dump = subprocess.run([bpftool, "btf", "dump", "file", str(plain), "format", "raw"],
                          capture_output=True, text=True, check=True).stdout
    assert "STRUCT 'user_pt_regs'" in dump  # an arm64 kernel's types
    # btfhub's layout: one RELEASE.btf inside the .tar.xz
    with tarfile.open(imp["path"], mode="r:xz") as tf:
        assert tf.getnames() == [f"{release}.btf"]

    rows = run_gadget("btf", "list", str(kernels), "--format", "json").json()
    assert sorted((r["id"], r["versionId"], r["arch"]) for r in rows) == sorted(
        [("debian", "12", "x86_64")] * 2 + [("debian", "12", "arm64")] * 2)
    table = run_gadget("btf", "list", str(kernels), "--arch", "arm64").stdout
    assert release in table and "x86_64" not in table


def test_import_of_this_machines_btf_uses_its_os_release_and_uname(tmp_path):
    import platform

    from gadgetsmith.runtime.bpf.btfgen import os_release

    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("this kernel has no BTF")
    os_id, version_id = os_release()
    machine = "x86_64" if archive.btf_arch(Path("/sys/kernel/btf/vmlinux").read_bytes()) == "amd64" \
        else "arm64"
    res = run_gadget("btf", "import", "/sys/kernel/btf/vmlinux", "--archive", str(tmp_path), "--plain",
                     "--format", "json")
    (imp,) = res.json()["imported"]
    assert imp["kernel"] == f"{os_id}/{version_id}/{machine}/{platform.release()}"
    assert Path(imp["path"]).read_bytes() == Path("/sys/kernel/btf/vmlinux").read_bytes()


def test_import_refuses_what_is_not_a_kernel_package(tmp_path):
    junk = tmp_path / "linux-image-junk.deb"
    junk.write_bytes(b"!<arch>\n" + b"x" * 100)
    res = run_gadget("btf", "import", str(junk), "--archive", str(tmp_path / "a"), check=False)
    assert res.returncode == 2, res
    assert res.stderr.strip().splitlines() == [res.stderr.strip().splitlines()[-1]]
    assert str(junk) in res.stderr and "Traceback" not in res.stderr
    res = run_gadget("btf", "import", str(tmp_path / "missing.deb"), "--archive", str(tmp_path), check=False)
    assert res.returncode == 2 and "missing.deb: no such file" in res.stderr


# -- build --btfgen --------------------------------------------------------------------
def test_build_btfgen_layer_is_reproducible_and_holds_each_kernels_types(bundled):
    first, store = bundled.first, bundled.store
    entries = archive.scan_archive(bundled.archive)
    counts = {a: sum(e.arch == a for e in entries) for a in ("amd64", "arm64")}
    assert counts["amd64"] >= 2 and counts["arm64"] == 2
    assert first["btfgen"]["kernels"] == counts
    assert first["btfgen"]["cached"] == 0
    # the archive is only read: nothing extracted next to the user's files
    assert sorted(p.name for p in bundled.archive.rglob("*") if p.is_file() and p.name != ".complete") \
        == sorted(e.path.name for e in entries)

    info = run_gadget("inspect", "trace_open:btf", "--format", "json", store=store).json()
    from gadgetsmith.runtime.bpf.btfgen import read_layer
    from gadgetsmith.runtime.oci.layout import Layout

    layout = Layout(store)
    for m in info["manifests"]:
        arch = m["platform"]["architecture"]
        manifest = layout.read_json(m["digest"])
        layers = manifest["layers"]
        assert [la["mediaType"] for la in layers] == [
            "application/vnd.gadget.ebpf.program.v1+binary", "application/vnd.gadget.btfgen.v1+binary"]
        blob = layout.read_blob(layers[1]["digest"])
        assert len(blob) == layers[1]["size"] == first["btfgen"]["layerSizes"][arch]
        members = _layer_files(blob)
        names = [t.name for t in members]
        folder = archive.BTFHUB_ARCH[arch]
        expect = sorted(f"{e.key}.btf" for e in entries if e.arch == arch)
        assert names == expect and all(n.startswith(f"debian/12/{folder}/") for n in names)
        assert all(t.isfile() and t.mtime == int(SDE) and t.uid == 0 and t.mode == 0o644
                   for t in members)
        assert blob[4:8] == int(SDE).to_bytes(4, "little")  # the gzip header's mtime
        # every minimised BTF parses, is a few KB, and resolves every relocation of the object
        obj = core.read_object((bundled.objdir / f"{arch}.bpf.o").read_bytes())
        assert obj.relos
        for name, data in read_layer(blob).items():
            btf = Btf.from_bytes(data)
            assert len(data) < 64 * 1024, name
            task = btf.find("task_struct", "struct")
            assert task is not None and {"pid", "tgid", "nsproxy", "comm"} <= {m.name for m in task.members}
            for relo in obj.relos:
                assert core.resolve(obj, relo, btf).ok, (name, core.describe(obj.btf, relo))

    # unchanged rebuild: same digests, everything from the cache
    again = run_gadget(*bundled.args, store=store, env=bundled.env).json()
    assert again["digest"] == first["digest"]
    assert again["btfgen"]["cached"] == sum(counts.values())
    assert again["btfgen"]["seconds"] < max(0.5, first["btfgen"]["seconds"])
    # and without the cache: the same bytes again
    env2 = dict(bundled.env, GADGETSMITH_BTFGEN_CACHE=str(bundled.tmp / "cache2"))
    third = run_gadget(*bundled.args[:-2], "--no-store", env=env2).json()
    assert third["digest"] == first["digest"] and third["btfgen"]["cached"] == 0


def _bad_archive(tmp: Path, kernels: Path, what: str) -> tuple[Path, Path]:
    root = tmp / f"bad-{what}"
    x86 = root / "debian" / "12" / "x86_64"
    x86.mkdir(parents=True)
    good = next(e for e in archive.scan_archive(kernels) if e.arch == "amd64")
    shutil.copy(good.path, x86 / good.path.name)
    if what == "empty":
        bad = x86 / "5.10.0-0-empty.btf.tar.xz"
        bad.write_bytes(b"")
    elif what == "arch":
        arm = next(e for e in archive.scan_archive(kernels) if e.arch == "arm64")
        bad = x86 / arm.path.name
        shutil.copy(arm.path, bad)
    elif what == "corrupt":
        bad = x86 / "5.10.0-0-corrupt.btf"
        bad.write_bytes(archive.read_btf(good)[:100_000])
    else:  # an xz file that is not a tar
        bad = x86 / "5.10.0-0-notar.btf.tar.xz"
        bad.write_bytes(lzma.compress(b"not a tar"))
    return root, bad


@pytest.mark.parametrize("what,says", [
    ("empty", "empty file (btfhub has shipped some empty archives)"),
    ("arch", "this BTF is of an arm64 kernel but the file is under x86_64/"),
    ("corrupt", "corrupt or truncated BTF"),
    ("notar", "not a readable .tar.xz"),
])
def test_bad_archive_entries_fail_with_one_line_naming_the_file(kernels, tmp_path, what, says):
    root, bad = _bad_archive(tmp_path, kernels, what)
    res = run_gadget("build", str(SAMPLES / "trace_open"), "--arch", "amd64", "--no-store", "--btfgen",
                     "--btfhub-archive", str(root), env={"GADGETSMITH_BTFGEN_CACHE": str(tmp_path / "c")},
                     check=False)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: "), res
    assert says in lines[0]


def test_btfgen_flags_are_checked_before_compiling(kernels, tmp_path):
    res = run_gadget("build", str(SAMPLES / "trace_open"), "--btfgen", "--no-store", check=False)
    assert res.returncode == 2 and "--btfgen needs --btfhub-archive" in res.stderr
    res = run_gadget("build", str(SAMPLES / "trace_open"), "--btfhub-archive", str(kernels), "--no-store",
                     check=False)
    assert res.returncode == 2 and "add --btfgen" in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_gadget("build", str(SAMPLES / "trace_open"), "--btfgen", "--btfhub-archive", str(empty),
                     "--no-store", check=False)
    assert res.returncode == 2 and "no kernel BTF for x86_64, arm64" in res.stderr


# -- gadget check ----------------------------------------------------------------------
def test_check_finds_the_field_that_changed_between_6_1_and_6_12(kernels, mtime_gadgets, mtime_objects):
    k61, k612 = _key(kernels, "6.1", "amd64"), _key(kernels, "6.12", "amd64")
    expect = {"old": {k61: True, k612: False}, "new": {k61: False, k612: True},
              "guarded": {k61: True, k612: True}}
    for name, obj in mtime_objects.items():
        res = run_gadget("check", str(obj), "--arch", "amd64", "--kernels", str(kernels), "--format", "json",
                         check=False)
        report = res.json()
        got = {k["kernel"]: k["loads"] for k in report["kernels"]}
        assert got == expect[name], (name, report)
        assert res.returncode == (0 if all(got.values()) else 1)
        by = {k["kernel"]: k for k in report["kernels"]}
        if name == "old":
            (p,) = by[k612]["problems"]
            assert p == {"kind": "relocation", "program": "exe_mtime",
                         "section": "tracepoint/syscalls/sys_enter_getpid",
                         "message": "struct inode.i_mtime.tv_sec: struct inode has no field i_mtime"}
        if name == "new":
            assert [p["message"] for p in by[k61]["problems"]] == ["struct inode.i_mtime_sec: no such field"]
        if name == "guarded":  # the unresolved read is in code the verifier skips
            assert by[k612]["guarded"] == [
                "struct inode.i_mtime.tv_sec: struct inode has no field i_mtime "
                "(in code the verifier does not reach)"]
            assert by[k61]["guarded"][0].startswith("struct inode.i_mtime_sec: no such field")
    # a gadget directory is compiled for both architectures and judged per arch
    res = run_gadget("check", str(mtime_gadgets["old"]), "--kernels", str(kernels), check=False)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    for arch in ("amd64", "arm64"):
        assert any(_key(kernels, "6.1", arch) in ln and ln.split()[-1] == "loads" for ln in lines), res
        assert any(_key(kernels, "6.12", arch) in ln and ln.endswith("does not load") for ln in lines), res
    assert "loads on 2 of 4 kernels" in res.stdout


def test_check_reports_program_types_helpers_and_map_types_a_kernel_lacks(kernels, tmp_path):
    d = _gadget_dir(tmp_path, "newer", NEWER_PROGRAM)
    res = run_gadget("check", str(d), "--arch", "amd64", "--kernels", str(kernels), "--format", "json",
                     check=False)
    assert res.returncode == 1
    by = {k["kernel"]: k for k in res.json()["kernels"]}
    old = {p["message"] for p in by[_key(kernels, "6.1", "amd64")]["problems"]}
    new = {p["message"] for p in by[_key(kernels, "6.12", "amd64")]["problems"]}
    assert old == {
        "this kernel has no BPF_PROG_TYPE_NETFILTER programs",
        "this kernel has no bpf_cgrp_storage_get() helper (called by on_mkdir)",
        "this kernel has no BPF_MAP_TYPE_CGRP_STORAGE maps (map counts)",
        "no BTF tracepoint no_such_tracepoint in this kernel",
    }, old
    assert new == {"no BTF tracepoint no_such_tracepoint in this kernel"}


def test_check_verdict_agrees_with_a_load_on_this_kernel(mtime_objects, root, tmp_path):
    from gadgetsmith.runtime.bpf.loader import LoadedGadget
    from gadgetsmith.runtime.bpf.objmodel import GadgetObject
    from gadgetsmith.runtime.errors import RuntimeGadgetError

    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("this kernel has no BTF")
    trace_open = tmp_path / "trace_open"
    trace_open.mkdir()
    run_gadget("build", str(SAMPLES / "trace_open"), "--arch", "amd64", "--no-store", "--output-dir",
               str(trace_open))
    objects = dict(mtime_objects, trace_open=trace_open / "amd64.bpf.o")
    verdicts = {}
    for name, obj in objects.items():
        res = run_gadget("check", str(obj), "--arch", "amd64", "--kernels", "/sys/kernel/btf/vmlinux",
                         "--format", "json", check=False)
        (k,) = res.json()["kernels"]
        try:
            LoadedGadget(GadgetObject(obj.read_bytes()), autoattach=False).close()
            loaded = True
        except RuntimeGadgetError:
            loaded = False
        verdicts[name] = (k["loads"], loaded)
    assert all(check == load for check, load in verdicts.values()), verdicts
    # both outcomes occur, so the comparison says something
    assert {v[1] for v in verdicts.values()} == {True, False}, verdicts


def test_check_of_an_image_uses_its_btfgen_layer_by_default(bundled):
    res = run_gadget("check", "trace_open:btf", "--format", "json", store=bundled.store)
    got = sorted((k["kernel"], k["arch"], k["loads"]) for k in res.json()["kernels"])
    assert got == sorted((e.key, e.arch, True) for e in archive.scan_archive(bundled.archive))
    assert all(k["notes"] == ["a minimised BTF: only CO-RE relocations were checked"]
               for k in res.json()["kernels"])
    res = run_gadget("check", "nosuch:image", "--kernels", str(bundled.archive), store=bundled.store,
                     check=False)
    assert res.returncode == 1
    assert "nosuch:image: no such gadget directory, object file or image" in res.stderr


def test_lazy_btf_reads_kernel_types_as_the_full_parser(kernels):
    e = next(e for e in archive.scan_archive(kernels) if e.arch == "arm64")
    data = archive.read_btf(e)
    full, lazy = Btf.from_bytes(data), LazyBtf(data)
    assert len(lazy) == len(full.types)
    for name in ("task_struct", "inode", "bpf_func_id", "user_pt_regs"):
        assert [t.id for t in lazy.find_all(name)] == [t.id for t in full.find_all(name)]
    step = max(1, len(full.types) // 3000)
    for tid in range(1, len(full.types), step):
        assert lazy.types[tid] == full.types[tid]


def test_cache_key_ignores_type_numbering(tmp_path, mtime_objects):
    """Two objects of one source whose BTF types clang numbered differently share the key."""
    from gadgetsmith.toolchain.btfgen.minimize import object_key

    objs = []
    for i, pch in enumerate(("1", "")):
        od = tmp_path / f"o{i}"
        od.mkdir()
        run_gadget("build", str(SAMPLES / "trace_open"), "--arch", "amd64", "--no-store",
                   "--output-dir", str(od), env={"GADGETSMITH_NO_PCH": pch} if pch else None)
        objs.append((od / "amd64.bpf.o").read_bytes())
    if objs[0] == objs[1]:
        pytest.skip("clang numbered the types of both builds alike")
    assert object_key(objs[0]) == object_key(objs[1])
    assert object_key(objs[0]).startswith("core:")
    # another relocation, another key
    keys = {object_key(p.read_bytes()) for p in mtime_objects.values()} | {object_key(objs[0])}
    assert len(keys) == 4


# -- the runtime's pick ----------------------------------------------------------------
def test_pick_matches_ig_names_and_btfhub_arm64_folders():
    from gadgetsmith.runtime.bpf.btfgen import BtfgenError, HostKey, pick
    from gadgetsmith.toolchain.btfgen.layer import make_layer

    layer = make_layer({"debian/12/arm64/6.1.0-47-cloud-arm64.btf": b"A",
                        "debian/12/x86_64/6.1.0-47-cloud-amd64.btf": b"X",
                        "6.12.1-flat.btf": b"F"})
    assert pick(layer, HostKey("debian", "12", "aarch64", "6.1.0-47-cloud-arm64")) == b"A"
    assert pick(layer, HostKey("debian", "12", "x86_64", "6.1.0-47-cloud-amd64")) == b"X"
    assert pick(layer, HostKey("debian", "12", "x86_64", "6.12.1-flat")) == b"F"  # ig >= 0.52 builds
    with pytest.raises(BtfgenError) as e:
        pick(layer, HostKey("ubuntu", "22.04", "x86_64", "5.15.0-1-generic"))
    assert str(e.value) == (
        "this kernel has no BTF (/sys/kernel/btf/vmlinux) and the image's btfgen layer has no "
        "ubuntu/22.04/x86_64/5.15.0-1-generic; it has 3 kernel(s): 6.12.1-flat, "
        "debian/12/arm64/6.1.0-47-cloud-arm64, debian/12/x86_64/6.1.0-47-cloud-amd64")


def _trigger_until_done(proc: subprocess.Popen, path: str) -> None:
    import threading
    import time

    def loop() -> None:
        while proc.poll() is None:
            subprocess.run(["cat", path], capture_output=True)
            time.sleep(0.2)

    threading.Thread(target=loop, daemon=True).start()


def _flatten(ev: dict, prefix: str = "") -> dict:
    """A JSON event's leaves by dotted path."""
    out: dict = {}
    for k, v in ev.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _one_open_event(ref: str, store: Path, env: dict[str, str], path: str) -> dict:
    from ..conftest import GADGET

    full = dict(os.environ, GADGETSMITH_STORE=str(store), **env)
    proc = subprocess.Popen([GADGET, "run", ref, "--host", "--count", "1", "--timeout", "60",
                             "-F", f"fname=={path}", "-o", "json"], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _trigger_until_done(proc, path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (line,) = out.splitlines()
    return json.loads(line)


def test_run_without_kernel_btf_uses_the_images_entry_for_this_machine(kernels, bundled, mtime_gadgets,
                                                                       root, tmp_path, monkeypatch):
    """GADGETSMITH_KERNEL_BTF=none: as on a kernel without BTF, libbpf gets this machine's
    minimised BTF from the image (an entry made from /sys/kernel/btf/vmlinux)."""
    import uuid

    from gadgetsmith.runtime.errors import RuntimeGadgetError
    from gadgetsmith.runtime.gadget import Gadget

    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("this kernel has no BTF")
    store = bundled.store
    env = {"GADGETSMITH_BTFGEN_CACHE": str(tmp_path / "cache")}
    path = f"/nonexistent-btfgen-{uuid.uuid4().hex[:8]}"
    with_btf = _one_open_event("trace_open:btf", store, {}, path)
    from_image = _one_open_event("trace_open:btf", store, {"GADGETSMITH_KERNEL_BTF": "none"}, path)
    # the same fields, decoded the same; values that differ between two runs of `cat` (its
    # time, ids, and what a parallel test's containers make the enrichment see) are
    # compared by presence only
    flat_btf, flat_image = _flatten(with_btf), _flatten(from_image)
    assert flat_image.keys() == flat_btf.keys()
    same = {k for k in flat_btf if not k.startswith(("timestamp", "k8s.", "runtime."))
            and k.rsplit(".", 1)[-1] not in ("pid", "tid")}
    assert {k: flat_image[k] for k in same} == {k: flat_btf[k] for k in same}
    assert from_image["fname"] == path and from_image["error"] == "ENOENT"
    assert from_image["proc"]["comm"] == "cat"

    # the image without this kernel: one line with the key and what the image has
    text = run_gadget("build", str(SAMPLES / "trace_open"), "-t", "trace_open:others", "--btfgen",
                      "--btfhub-archive", str(kernels), "--arch", "amd64", store=store, env=env).stdout
    assert "btfgen: 2 kernels (amd64 2)" in text and "0 cached" in text
    res = run_gadget("run", "trace_open:others", "--host", "--timeout", "1", store=store,
                     env={"GADGETSMITH_KERNEL_BTF": "none"}, check=False)
    assert res.returncode == 1
    from gadgetsmith.runtime.bpf.btfgen import host_key

    assert res.stderr.strip() == (
        f"error: this kernel has no BTF (/sys/kernel/btf/vmlinux) and the image's btfgen layer "
        f"has no {host_key()}; it has 2 kernel(s): {_key(kernels, '6.1', 'amd64')}, "
        f"{_key(kernels, '6.12', 'amd64')}")

    # libbpf really relocates with the bundle: this machine's name on the 6.1 kernel's BTF
    # makes the i_mtime_sec read unresolvable, so the load fails (the Python API here)
    lie = tmp_path / "lie" / str(host_key()).rsplit("/", 1)[0]
    lie.mkdir(parents=True)
    six_one = next(e for e in archive.scan_archive(kernels) if e.key == _key(kernels, "6.1", "amd64"))
    (lie / f"{host_key().release}.btf").write_bytes(archive.read_btf(six_one))
    run_gadget("build", str(mtime_gadgets["new"]), "-t", "mtime:lie", "--btfgen", "--btfhub-archive",
               str(tmp_path / "lie"), "--arch", "amd64", store=store, env=env)
    Gadget("mtime:lie", store=store).close()  # with the kernel's BTF it loads
    monkeypatch.setenv("GADGETSMITH_KERNEL_BTF", "none")
    with pytest.raises(RuntimeGadgetError, match="exe_mtime .* cannot be loaded"):
        Gadget("mtime:lie", store=store)
