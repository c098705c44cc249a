"""`gadget build` + the local store, end to end through the real CLI, clang and skopeo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import SAMPLES, need_tool, run_gadget

pytestmark = pytest.mark.usefixtures("clang_available")

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EBPF = "application/vnd.gadget.ebpf.program.v1+binary"
CONFIG = "application/vnd.gadget.config.v1+yaml"
ARTIFACT = "application/vnd.gadget.v1+binary"


def blob(store: Path, digest: str) -> bytes:
    return (store / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def store_index(store: Path) -> dict:
    return json.loads((store / "index.json").read_text())


def elf_machine_is_bpf(data: bytes) -> bool:
    # ELF magic, e_machine (offset 18, little endian) == EM_BPF (247)
    return data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 247


def section_names(obj: bytes) -> set[str]:
    import struct

    shoff = struct.unpack_from("<Q", obj, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", obj, 0x3A)
    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    names = set()
    for i in range(shnum):
        name_off = sh(i)[0]
        end = obj.index(b"\0", stroff + name_off)
        names.add(obj[stroff + name_off:end].decode())
    return names


def test_build_produces_ig_compatible_image(tiny_gadget: Path, store: Path) -> None:
    res = run_gadget("build", str(tiny_gadget), "-t", "tiny:dev", store=store)
    assert "Successfully built ghcr.io/inspektor-gadget/gadget/tiny:dev@sha256:" in res.stdout

    entries = store_index(store)["manifests"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["mediaType"] == INDEX
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == (
        "ghcr.io/inspektor-gadget/gadget/tiny:dev"
    )
    assert json.loads((store / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}

    index_bytes = blob(store, entry["digest"])
    index = json.loads(index_bytes)
    assert index["mediaType"] == INDEX
    assert "artifactType" not in index
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    ann = index["annotations"]
    assert ann["org.opencontainers.image.title"] == "tiny"
    assert ann["org.opencontainers.image.description"] == "A tiny test gadget"
    assert ann["org.opencontainers.image.url"] == "https://example.com/tiny"
    assert ann["org.opencontainers.image.documentation"] == "https://example.com/tiny/docs"
    assert ann["org.opencontainers.image.source"] == "https://example.com/tiny/src"
    assert ann["team.example.com/owner"] == "platform"
    assert ann["io.gadgetsmith.builder.version"]
    assert "org.opencontainers.image.created" in ann

    objs = []
    for mdesc in index["manifests"]:
        assert mdesc["mediaType"] == MANIFEST
        raw = blob(store, mdesc["digest"])
        # like ig: the per-arch manifest has no mediaType and starts with these fields
        assert raw.startswith(b'{"schemaVersion":2,"artifactType":"' + ARTIFACT.encode() + b'"')
        m = json.loads(raw)
        assert "mediaType" not in m
        assert m["config"]["mediaType"] == CONFIG
        # config blob is gadget.yaml verbatim
        assert blob(store, m["config"]["digest"]) == (tiny_gadget / "gadget.yaml").read_bytes()
        assert [layer["mediaType"] for layer in m["layers"]] == [EBPF]
        assert set(m["layers"][0]) == {"mediaType", "digest", "size"}
        obj = blob(store, m["layers"][0]["digest"])
        assert elf_machine_is_bpf(obj)
        sections = section_names(obj)
        assert ".BTF" in sections and ".BTF.ext" in sections
        assert not any(s.startswith(".debug_") for s in sections), "DWARF must be stripped"
        objs.append(obj)


def test_source_date_epoch_gives_identical_digest(tiny_gadget: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    a = run_gadget("build", str(tiny_gadget), "--no-store", "--format", "json", env=env,
                   store=tmp_path / "s1").json()
    b = run_gadget("build", str(tiny_gadget), "-t", "x:1", "--format", "json", env=env,
                   store=tmp_path / "s2").json()
    assert a["digest"] == b["digest"]
    assert a["stored"] is False and b["stored"] is True
    assert not (tmp_path / "s1").exists()
    idx = store_index(tmp_path / "s2")["manifests"][0]
    assert idx["annotations"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    c = run_gadget("build", str(tiny_gadget), "--no-store", "--format", "json",
                   env={"SOURCE_DATE_EPOCH": "1700000001"}).json()
    assert c["digest"] != a["digest"]


def test_single_arch_and_output_dir(tiny_gadget: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    res = run_gadget("build", str(tiny_gadget), "--arch", "amd64", "--output-dir", str(out), "-t", "t:a",
                     "--format", "json", store=store).json()
    assert res["architectures"] == ["amd64"]
    assert sorted(p.name for p in out.iterdir()) == ["amd64.bpf.o"]
    info = run_gadget("inspect", "t:a", "--format", "json", store=store).json()
    assert [m["platform"]["architecture"] for m in info["manifests"]] == ["amd64"]


def test_list_inspect_tag_rm(tiny_gadget: Path, store: Path) -> None:
    run_gadget("build", str(tiny_gadget), "-t", "tiny:dev", store=store)
    rows = run_gadget("list", "--format", "json", store=store).json()
    assert [(r["repository"], r["tag"]) for r in rows] == [("tiny", "dev")]
    table = run_gadget("list", store=store).stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "DIGEST", "CREATED"]
    assert table[1].split()[:3] == ["tiny", "dev", rows[0]["digest"][7:19]]

    info = run_gadget("inspect", "tiny:dev", "--format", "json", store=store).json()
    assert info["digest"] == rows[0]["digest"]
    assert info["datasources"] == [
        {"name": "tiny", "fields": [{"name": "pid", "description": "Process ID"}]}
    ]
    assert info["params"] == [
        {"operator": "ebpf", "name": "only_failed", "key": "failed", "type": "bool",
         "default": "false", "description": "Show only failed calls"}
    ]
    assert {layer["kind"] for m in info["manifests"] for layer in m["layers"]} == {"ebpf"}
    text = run_gadget("inspect", "tiny:dev", store=store).stdout
    assert "linux/amd64" in text and "linux/arm64" in text and "--failed" in text

    run_gadget("tag", "tiny:dev", "registry.example.com/team/tiny:v1", store=store)
    refs = {r["reference"]: r["digest"] for r in run_gadget("list", "--format", "json",
                                                            store=store).json()}
    assert refs == {
        "ghcr.io/inspektor-gadget/gadget/tiny:dev": info["digest"],
        "registry.example.com/team/tiny:v1": info["digest"],
    }
    nblobs = len(list((store / "blobs" / "sha256").iterdir()))
    res = run_gadget("rm", "tiny:dev", store=store)
    assert "Untagged" in res.stdout
    assert len(list((store / "blobs" / "sha256").iterdir())) == nblobs, "still referenced"
    res = run_gadget("rm", "registry.example.com/team/tiny:v1", store=store)
    assert "Deleted" in res.stdout
    assert list((store / "blobs" / "sha256").iterdir()) == []
    assert run_gadget("list", "--format", "json", store=store).json() == []


def test_rebuild_moves_tag_and_collects_old_blobs(tiny_gadget: Path, store: Path) -> None:
    run_gadget("build", str(tiny_gadget), "-t", "tiny:dev", "--arch", "amd64", store=store,
               env={"SOURCE_DATE_EPOCH": "1"})
    first = store_index(store)["manifests"][0]["digest"]
    run_gadget("build", str(tiny_gadget), "-t", "tiny:dev", "--arch", "amd64", store=store,
               env={"SOURCE_DATE_EPOCH": "2"})
    entries = store_index(store)["manifests"]
    assert len(entries) == 1 and entries[0]["digest"] != first
    assert not (store / "blobs" / "sha256" / first[7:]).exists()


def test_tag_collision_is_refused(tiny_gadget: Path, store: Path) -> None:
    run_gadget("build", str(tiny_gadget), "-t", "a:1", "--arch", "amd64", store=store,
               env={"SOURCE_DATE_EPOCH": "1"})
    run_gadget("build", str(tiny_gadget), "-t", "b:1", "--arch", "amd64", store=store,
               env={"SOURCE_DATE_EPOCH": "2"})
    res = run_gadget("tag", "a:1", "b:1", store=store, check=False)
    assert res.returncode == 1
    assert "already points at" in res.stderr and "--force" in res.stderr
    assert "Traceback" not in res.stderr
    run_gadget("tag", "a:1", "b:1", "--force", store=store)
    rows = run_gadget("list", "--format", "json", store=store).json()
    assert len({r["digest"] for r in rows}) == 1


def test_skopeo_reads_the_store(tiny_gadget: Path, store: Path, tmp_path: Path) -> None:
    skopeo = need_tool("skopeo")
    run_gadget("build", str(tiny_gadget), "-t", "localhost:5000/team/tiny:v1", store=store)
    digest = store_index(store)["manifests"][0]["digest"]
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{store}:localhost:5000/team/tiny:v1"],
        capture_output=True, check=True,
    ).stdout
    assert json.loads(raw)["mediaType"] == INDEX
    dest = tmp_path / "copy"
    subprocess.run(
        [skopeo, "copy", "--all", "--preserve-digests", f"oci:{store}:localhost:5000/team/tiny:v1",
         f"oci:{dest}:copied"],
        capture_output=True, check=True,
    )
    copied = json.loads((dest / "index.json").read_text())["manifests"][0]
    assert copied["digest"] == digest


def test_concurrent_builds_keep_store_consistent(tiny_gadget: Path, store: Path) -> None:
    from ..conftest import GADGET

    env = dict(os.environ, GADGETSMITH_STORE=str(store))
    procs = [
        subprocess.Popen([GADGET, "build", str(tiny_gadget), "-t", f"c:{i}", "--arch", "amd64"],
                         env=dict(env, SOURCE_DATE_EPOCH=str(i)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        for i in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    tags = sorted(r["tag"] for r in run_gadget("list", "--format", "json", store=store).json())
    assert tags == ["0", "1", "2", "3"]
    for r in run_gadget("list", "--format", "json", store=store).json():
        run_gadget("inspect", r["reference"], "--format", "json", store=store)


def test_leftover_temp_files_do_not_break_store(tiny_gadget: Path, store: Path) -> None:
    run_gadget("build", str(tiny_gadget), "-t", "x:1", "--arch", "amd64", store=store)
    # what a writer killed mid-write leaves behind
    (store / "blobs" / "sha256" / ".tmp-abc123").write_bytes(b"partial")
    (store / ".tmp-index").write_bytes(b'{"schemaVer')
    assert run_gadget("list", "--format", "json", store=store).json()[0]["tag"] == "1"
    run_gadget("rm", "x:1", store=store)
    assert run_gadget("list", "--format", "json", store=store).json() == []


def test_build_all_sample_gadgets(store: Path) -> None:
    samples = sorted(p for p in SAMPLES.iterdir() if (p / "program.bpf.c").exists())
    assert len(samples) >= 5, "sample-gadgets/ must hold at least five gadgets"
    for s in samples:
        res = run_gadget("build", str(s), "-t", f"{s.name}:test", "--format", "json", store=store)
        assert res.json()["architectures"] == ["amd64", "arm64"]
    names = {r["repository"] for r in run_gadget("list", "--format", "json", store=store).json()}
    assert {s.name for s in samples} <= names


def test_digest_does_not_depend_on_checkout_location(tiny_gadget: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "somewhere" / "else"
    shutil.copytree(tiny_gadget, other)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    a = run_gadget("build", str(tiny_gadget), "--no-store", "--format", "json", env=env).json()
    b = run_gadget("build", str(other), "--no-store", "--format", "json", env=env).json()
    assert a["digest"] == b["digest"]


def test_precompiled_vmlinux_gives_the_same_program(tiny_gadget: Path, tmp_path: Path) -> None:
    """The cached vmlinux.h PCH changes speed, not code: same sections and instructions."""
    outs = {}
    for mode, env in (("pch", {}), ("plain", {"GADGETSMITH_NO_PCH": "1"})):
        out = tmp_path / mode
        out.mkdir()
        env = dict(env, XDG_CACHE_HOME=str(tmp_path / "cache"))
        run_gadget("build", str(tiny_gadget), "--arch", "amd64", "--no-store", "--output-dir", str(out),
                   env=env)
        outs[mode] = (out / "amd64.bpf.o").read_bytes()
    assert list((tmp_path / "cache" / "gadgetsmith" / "pch").glob("vmlinux-amd64-*.pch"))
    assert section_names(outs["pch"]) == section_names(outs["plain"])
    objdump = need_tool("llvm-objdump-19")
    dis = {}
    for mode, data in outs.items():
        p = tmp_path / f"{mode}.o"
        p.write_bytes(data)
        text = subprocess.run([objdump, "-d", str(p)], capture_output=True, text=True,
                              check=True).stdout
        dis[mode] = text.split("\n", 3)[3]  # drop the header that names the file
    assert dis["pch"] == dis["plain"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("// c\n/* block\n comment */\n#include <vmlinux.h>\n", True),
        ('#include "vmlinux.h"\n', True),
        ("#define BPF_NO_PRESERVE_ACCESS_INDEX\n#include <vmlinux.h>\n", False),
        ("#include <linux/bpf.h>\n#include <vmlinux.h>\n", False),
        ("int x;\n", False),
    ],
)
def test_pch_only_when_vmlinux_comes_first(tmp_path: Path, source: str, expected: bool) -> None:
    from gadgetsmith.toolchain.build.compile import starts_with_vmlinux

    f = tmp_path / "p.c"
    f.write_text(source)
    assert starts_with_vmlinux(f) is expected
