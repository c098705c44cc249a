"""`gadget build` of gadgets with a WASM module (build.yaml `wasm:`): C, Go (IG's SDK from
the module proxy, or IG's tree), Rust, prebuilt; the WASM layer; what validation accepts;
one-line errors."""

from __future__ import annotations

import hashlib
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from ..conftest import TINY_PROGRAM, TINY_YAML, clang_available, run_gadget  # noqa: F401
from ..wasm_util import WASM

WASM_MEDIA_TYPE = "application/vnd.gadget.wasm.program.v1+binary"
IG = "github.com/inspektor-gadget/inspektor-gadget"


def tiny_with_module(tmp_path: Path, yaml_extra: str = "") -> Path:
    """The conftest tiny gadget plus tests/wasm/c/tiny_label.c as wasm/program.c."""
    d = tmp_path / "tiny"
    (d / "wasm").mkdir(parents=True)
    (d / "program.bpf.c").write_text(TINY_PROGRAM)
    (d / "gadget.yaml").write_text(TINY_YAML + yaml_extra)
    shutil.copy(WASM / "c" / "tiny_label.c", d / "wasm" / "program.c")
    (d / "build.yaml").write_text("wasm: wasm/program.c\n")
    return d


def layers(store: Path, ref: str) -> dict[str, list[dict]]:
    """arch -> layer descriptors of a stored image, as `gadget inspect` shows them."""
    r = run_gadget("inspect", ref, "--format", "json", store=store).json()
    return {m["platform"]["architecture"]: m["layers"] for m in r["manifests"]}


def wasm_layer(store: Path, ref: str) -> bytes:
    lays = layers(store, ref)
    digests = {a: [x["digest"] for x in ls if x["mediaType"] == WASM_MEDIA_TYPE] for a, ls in lays.items()}
    assert set(digests) == {"amd64", "arm64"} and all(len(v) == 1 for v in digests.values())
    assert digests["amd64"] == digests["arm64"], "one module for both architectures"
    return (store / "blobs" / "sha256" / digests["amd64"][0].split(":", 1)[1]).read_bytes()


def test_c_module_layer_reproducible(tmp_path, clang_available):
    """The module is the WASM layer of both manifests (after the eBPF layer, as ig orders
    them); two builds under SOURCE_DATE_EPOCH give the same image."""
    d = tiny_with_module(tmp_path)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    digests = []
    for i in range(2):
        store = tmp_path / f"store{i}"
        r = run_gadget("build", str(d), "-t", "tiny:wasm", "--format", "json", store=store, env=env)
        digests.append(r.json()["digest"])
        assert r.json()["wasm"]["language"] == "c"
        lays = layers(store, "tiny:wasm")
        assert [x["kind"] for x in lays["amd64"]] == ["ebpf", "wasm"]
        module = wasm_layer(store, "tiny:wasm")
        assert module[:4] == b"\0asm"
    assert digests[0] == digests[1]


def test_validation_accepts_what_the_module_adds(tmp_path, clang_available, store):
    """gadget.yaml may describe the fields the module adds and the data sources it
    creates: the build (which validates) and `gadget validate` are clean; a field nobody
    adds is still a warning."""
    d = tiny_with_module(tmp_path)
    (d / "gadget.yaml").write_text(textwrap.dedent("""\
        name: tiny
        description: A tiny test gadget
        datasources:
          tiny:
            fields:
              pid:
                annotations:
                  description: Process ID
              label:
                annotations:
                  description: added by the module
          tiny_stats:
            fields:
              count:
                annotations:
                  description: events so far
        params:
          ebpf:
            only_failed:
              key: failed
              defaultValue: "false"
              description: Show only failed calls
        """))
    r = run_gadget("build", str(d), "--no-store")
    assert "warning" not in r.stdout + r.stderr, r
    v = run_gadget("validate", str(d), "--strict")
    assert v.returncode == 0, v
    (d / "gadget.yaml").write_text((d / "gadget.yaml").read_text().replace("label:", "lable:"))
    v = run_gadget("validate", str(d), check=False)
    assert "datasources.tiny.fields.lable: no field 'lable' in struct event nor among the fields " \
           "the WASM module adds at gadgetInit" in v.stdout, v


def test_prebuilt_module_is_packaged_as_is(tmp_path, clang_available, store):
    from ..wasm_util import build_c_module

    d = tiny_with_module(tmp_path)
    module = build_c_module(WASM / "c" / "tiny_label.c", [])
    (d / "module.wasm").write_bytes(module)
    (d / "build.yaml").write_text("wasm: module.wasm\n")
    r = run_gadget("build", str(d), "-t", "tiny:b", "--format", "json", "--no-validate-metadata",
                   store=store)
    assert r.json()["wasm"]["language"] == "prebuilt"
    assert wasm_layer(store, "tiny:b") == module


@pytest.mark.parametrize("content,message", [
    (b"not wasm", "not a valid WebAssembly module"),
    # a valid module (an empty one) that is not a gadget's
    (b"\0asm\x01\0\0\0", "does not export gadgetAPIVersion (not a gadget module?)"),
])
def test_bad_prebuilt_module(tmp_path, clang_available, content, message):
    d = tiny_with_module(tmp_path)
    (d / "module.wasm").write_bytes(content)
    (d / "build.yaml").write_text("wasm: module.wasm\n")
    r = run_gadget("build", str(d), "--no-store", "--arch", "amd64", check=False)
    assert r.returncode == 2, r
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {d / 'build.yaml'}: wasm module.wasm: wasm module module.wasm: load: ")
    assert message in line


def test_bad_wasm_key(tmp_path, clang_available):
    d = tiny_with_module(tmp_path)
    (d / "module.py").write_text("")
    (d / "build.yaml").write_text("wasm: module.py\n")
    r = run_gadget("build", str(d), "--no-store", check=False)
    assert r.returncode == 2
    assert "wasm 'module.py': give a Go (.go), C (.c) or Rust (.rs) source or a prebuilt .wasm" in r.stderr


def test_c_compile_error_is_one_line(tmp_path, clang_available):
    d = tiny_with_module(tmp_path)
    (d / "wasm" / "program.c").write_text("#include <gadget/wasm.h>\nint x = ;\n")
    r = run_gadget("build", str(d), "--no-store", "--arch", "amd64", check=False)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: wasm: compile failed: ") and "program.c:2:9: error" in last


# -- Go -------------------------------------------------------------------------------
def go_gadget(tmp_path: Path, in_tree: bool) -> Path:
    """The tiny gadget with tests/wasm/go/passthrough as go/program.go. ``in_tree``: its
    go.mod as IG's own gadgets have it (IG's module at v0.0.0, replaced by ../../../),
    which here points to a folder without IG's module."""
    d = tmp_path / "src" / "gadgets" / "tiny"
    (d / "go").mkdir(parents=True)
    (d / "program.bpf.c").write_text(TINY_PROGRAM)
    (d / "gadget.yaml").write_text(TINY_YAML)
    (d / "build.yaml").write_text("wasm: go/program.go\n")
    src = WASM / "go" / "passthrough"
    (d / "go" / "program.go").write_text((src / "program.go").read_text().replace('"events"', '"tiny"'))
    if in_tree:
        (d / "go" / "go.mod").write_text(f"module main\n\ngo 1.24\n\nrequire {IG} v0.0.0\n\n"
                                         f"replace {IG} => ../../../\n")
    else:
        shutil.copy(src / "go.mod", d / "go" / "go.mod")
        shutil.copy(src / "go.sum", d / "go" / "go.sum")
    return d


def need_go() -> None:
    from gadgetsmith.toolchain.build.wasm import WasmBuildError, find_go

    from ..conftest import skip_or_fail

    try:
        find_go()
    except WasmBuildError as e:
        skip_or_fail(str(e))


def test_go_module_as_a_third_party_module(tmp_path, clang_available, store):
    need_go()
    d = go_gadget(tmp_path, in_tree=False)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    a = run_gadget("build", str(d), "-t", "tiny:go", "--format", "json", "--arch", "amd64",
                   store=store, env=env).json()
    assert a["wasm"]["language"] == "go" and a["wasm"]["mode"] == "module"
    lay = next(x for x in layers(store, "tiny:go")["amd64"] if x["kind"] == "wasm")
    assert b"gadgetAPIVersion" in (store / "blobs" / "sha256" / lay["digest"][7:]).read_bytes()
    b = run_gadget("build", str(d), "--no-store", "--format", "json", "--no-validate-metadata",
                   "--arch", "amd64", env=env).json()
    assert a["digest"] == b["digest"], "Go modules build reproducibly (-trimpath)"


def test_go_module_of_igs_tree_copied_out(tmp_path, clang_available, store):
    """IG's in-tree layout outside IG's tree: built with IG's SDK from the module proxy
    through our go.work; the gadget's files are not touched."""
    need_go()
    d = go_gadget(tmp_path, in_tree=True)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (d / "go").iterdir()}
    r = run_gadget("build", str(d), "-t", "tiny:tree", "--format", "json", "--arch", "amd64",
                   store=store)
    assert r.json()["wasm"]["mode"] == "workspace"
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (d / "go").iterdir()}
    assert after == before
    work = list((Path.home() / ".cache" / "gadgetsmith" / "go-work").glob("*/go.work"))
    text = [w.read_text() for w in work if f"use {(d / 'go').resolve()}\n" in w.read_text()]
    assert text and f"replace {IG} => {IG} v0.55.0" in text[0]
    shutil.rmtree(next(w for w in work if w.read_text() == text[0]).parent)


def test_go_offline(tmp_path, clang_available):
    """Offline (GOPROXY=off): with Go's module cache warm the build works; with an empty
    one it fails in one line that says so."""
    need_go()
    d = go_gadget(tmp_path, in_tree=False)
    fast = ("--no-store", "--arch", "amd64", "--no-validate-metadata")
    run_gadget("build", str(d), *fast)                                   # warms the caches
    run_gadget("build", str(d), *fast, env={"GOPROXY": "off"})
    r = run_gadget("build", str(d), *fast, check=False,
                   env={"GOPROXY": "off", "GOMODCACHE": str(tmp_path / "empty"), "GOFLAGS": "-modcacherw"})
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: go build {d / 'go' / 'program.go'}: ")
    assert "the Go module proxy is not reachable: offline, only modules already in the Go module " \
           f"cache {tmp_path / 'empty'} can be used" in last


def test_go_compile_error_is_one_line(tmp_path, clang_available):
    need_go()
    d = go_gadget(tmp_path, in_tree=False)
    (d / "go" / "program.go").write_text("package main\n\nfunc main() { undefinedThing() }\n")
    r = run_gadget("build", str(d), "--no-store", "--arch", "amd64", check=False)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: go build ") and "undefined: undefinedThing" in last


def test_go_missing_or_too_old(tmp_path, clang_available):
    d = go_gadget(tmp_path, in_tree=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("clang-19", "llvm-strip-19"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    env = {"PATH": str(bin_dir)}
    r = run_gadget("build", str(d), "--no-store", check=False, env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "error: building a Go WASM module needs Go >= 1.24 (go:wasmexport), and there is no "
        "'go' in PATH: install Go >= 1.24 (https://go.dev/dl/) or a Go toolchain from PyPI: "
        "pip install 'gadgetsmith[wasm]'")
    (bin_dir / "go").write_text("#!/bin/sh\necho go1.22.5\n")
    (bin_dir / "go").chmod(0o755)
    r = run_gadget("build", str(d), "--no-store", check=False, env=env)
    assert f"and {bin_dir / 'go'} is go1.22: install Go >= 1.24" in r.stderr


RUST_LIB = """\
#[no_mangle]
pub extern "C" fn gadgetAPIVersion() -> u64 {
    1
}
"""


def rust_gadget(tmp_path: Path) -> Path:
    d = tiny_with_module(tmp_path)
    (d / "rust" / "src").mkdir(parents=True)
    (d / "rust" / "Cargo.toml").write_text('[package]\nname = "tiny-module"\nversion = "0.1.0"\n'
                                           'edition = "2021"\n[lib]\ncrate-type = ["cdylib"]\n')
    (d / "rust" / "src" / "lib.rs").write_text(RUST_LIB)
    (d / "build.yaml").write_text("wasm: rust/src/lib.rs\n")
    return d


def test_rust_module(tmp_path, clang_available, store):
    """A Rust module builds with cargo where a wasm32-wasip1 target is installed; the
    crate's folder is left as it was (cargo's Cargo.lock is removed again)."""
    from gadgetsmith.toolchain.build.wasm import rust_target

    from ..conftest import skip_or_fail

    if rust_target() is None:
        skip_or_fail("no Rust wasm32-wasip1 target (rustup target add wasm32-wasip1)")
    d = rust_gadget(tmp_path)
    r = run_gadget("build", str(d), "-t", "tiny:rust", "--arch", "amd64", "--format", "json",
                   "--no-validate-metadata", store=store)
    assert r.json()["wasm"]["language"] == "rust"
    lay = next(x for x in layers(store, "tiny:rust")["amd64"] if x["kind"] == "wasm")
    assert b"gadgetAPIVersion" in (store / "blobs" / "sha256" / lay["digest"][7:]).read_bytes()
    assert sorted(p.name for p in (d / "rust").iterdir()) == ["Cargo.toml", "src"]


def test_rust_without_its_wasm_target(tmp_path, clang_available):
    """Without the target (here: a rustc whose sysroot has none), one line says what to
    install, before anything compiles."""
    d = rust_gadget(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rustc").write_text(f"#!/bin/sh\necho {tmp_path / 'sysroot'}\n")
    (bin_dir / "rustc").chmod(0o755)
    (bin_dir / "cargo").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "cargo").chmod(0o755)
    r = run_gadget("build", str(d), "--no-store", check=False,
                   env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "error: building a Rust WASM module needs the wasm32-wasip1 Rust target: install Rust "
        "with rustup, then: rustup target add wasm32-wasip1")
