"""The build cache (toolchain/build/cache.py): an unchanged gadget is not compiled again, and
any changed input is. clang is a wrapper script (CLANG=...) that logs each compile, so a
test sees whether clang ran; another version string is another wrapper text."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gadgetsmith.toolchain.build.compile import find_toolchain

from ..conftest import REPO, entry_imports

GADGET = str(Path(sys.executable).parent / "gadget")

PROGRAM = """\
// SPDX-License-Identifier: GPL-2.0
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "local.h"

const volatile int value = VALUE + LOCAL;

SEC("tracepoint/syscalls/sys_enter_getpid")
int handle(void *ctx)
{
	return value + SOURCE;
}

char LICENSE[] SEC("license") = "GPL";
"""

WRAPPER = """\
#!/bin/sh
if [ "$1" = "--version" ]; then
  echo "Debian clang version {version}"
  echo "Target: x86_64-pc-linux-gnu"
  exit 0
fi
echo "$*" >> "{log}"
exec "{clang}" "$@"
"""


class Gadget:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "g"
        self.dir.mkdir()
        self.log = root / "clang.log"
        self.clang = root / "bin" / "clang-wrapper"
        self.clang.parent.mkdir()
        self.real = find_toolchain().clang
        self.set_clang("19.1.7 (test A)")
        self.write(source=1, local=2, value=3)
        self.env = dict(os.environ, CLANG=str(self.clang), XDG_CACHE_HOME=str(root / "cache"),
                        GADGETSMITH_STORE=str(root / "store"), GADGETSMITH_NO_PCH="1",
                        SOURCE_DATE_EPOCH="1700000000")
        self.env.pop("GADGETSMITH_BUILD_CACHE", None)

    def set_clang(self, version: str) -> None:
        self.clang.write_text(WRAPPER.format(version=version, log=self.log, clang=self.real))
        self.clang.chmod(0o755)

    def write(self, source: int | None = None, local: int | None = None, value: int | None = None) -> None:
        if source is not None:
            (self.dir / "program.bpf.c").write_text(PROGRAM.replace("SOURCE", str(source)))
        if local is not None:
            (self.dir / "local.h").write_text(f"#define LOCAL {local}\n")
        if value is not None:
            (self.dir / "build.yaml").write_text(f"cflags: [-DVALUE={value}]\n")

    def compiles(self) -> int:
        if not self.log.exists():
            return 0
        return sum(1 for line in self.log.read_text().splitlines() if " -c " in line)

    def gadget(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([GADGET, *args], env=self.env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc

    def build(self, *args: str) -> str:
        """The built image's digest."""
        out = self.gadget("build", str(self.dir), "--arch", "amd64", "-o", "json", *args).stdout
        digest: str = json.loads(out)["digest"]
        return digest

    def entries(self, kind: str) -> list[Path]:
        return sorted((self.root / "cache" / "gadgetsmith" / "objects" / "v1" / kind).glob("*/*"))


@pytest.fixture
def g(tmp_path: Path) -> Gadget:
    return Gadget(tmp_path)


def test_an_unchanged_gadget_is_not_compiled_again(g: Gadget) -> None:
    first = g.build()
    assert g.compiles() == 1
    assert g.build() == first
    assert g.compiles() == 1  # served from the cache, same image
    assert len(g.entries("objects")) == 1 and len(g.entries("manifests")) == 1


def test_a_changed_source_is_compiled(g: Gadget) -> None:
    first = g.build()
    g.write(source=5)
    assert g.build() != first
    assert g.compiles() == 2
    g.write(source=1)  # back to the first text: that object again, from the cache
    assert g.build() == first
    assert g.compiles() == 2


def test_a_changed_included_header_is_compiled(g: Gadget) -> None:
    first = g.build()
    g.write(local=7)  # same size, another value
    assert g.build() != first
    assert g.compiles() == 2


def test_a_new_header_that_shadows_another_is_compiled(g: Gadget) -> None:
    # <local.h> is found in b/; a later a/local.h comes first in the search path
    (g.dir / "program.bpf.c").write_text(PROGRAM.replace('"local.h"', "<local.h>").replace("SOURCE", "1"))
    for d in ("a", "b"):
        (g.dir / d).mkdir()
    (g.dir / "local.h").rename(g.dir / "b" / "local.h")
    (g.dir / "build.yaml").write_text("cflags: [-DVALUE=3, -Ia, -Ib]\n")
    first = g.build()
    assert g.build() == first and g.compiles() == 1
    (g.dir / "a" / "local.h").write_text("#define LOCAL 9\n")
    assert g.build() != first
    assert g.compiles() == 2


def test_a_changed_flag_in_build_yaml_is_compiled(g: Gadget) -> None:
    first = g.build()
    g.write(value=4)
    assert g.build() != first
    assert g.compiles() == 2


def test_another_arch_is_compiled(g: Gadget) -> None:
    g.build()
    out = json.loads(g.gadget("build", str(g.dir), "--arch", "arm64", "-o", "json").stdout)
    assert out["architectures"] == ["arm64"]
    assert g.compiles() == 2
    assert len(g.entries("manifests")) == 2  # (the objects may be the same bytes: one blob)


def test_another_clang_version_is_compiled(g: Gadget) -> None:
    first = g.build()
    g.set_clang("19.1.8 (test B)")
    assert g.build() == first  # the same clang underneath: same object
    assert g.compiles() == 2
    assert g.build() == first
    assert g.compiles() == 2


def test_no_cache_compiles_and_gives_the_same_image(g: Gadget) -> None:
    first = g.build()
    assert g.build("--no-cache") == first  # reproducible (SOURCE_DATE_EPOCH): byte-identical
    assert g.compiles() == 2
    g.env["GADGETSMITH_BUILD_CACHE"] = "off"
    assert g.build() == first
    assert g.compiles() == 3


def test_the_pch_build_is_cached_too(g: Gadget) -> None:
    del g.env["GADGETSMITH_NO_PCH"], g.env["SOURCE_DATE_EPOCH"]
    g.build()
    n = g.compiles()
    g.build()
    assert g.compiles() == n
    assert any("-include-pch" in line for line in g.log.read_text().splitlines())


@pytest.mark.parametrize("damage", ["object", "manifest", "object-gone"])
def test_a_damaged_entry_is_compiled_again_never_served(g: Gadget, damage: str) -> None:
    first = g.build()
    (obj,) = g.entries("objects")
    (man,) = g.entries("manifests")
    good = obj.read_bytes()
    if damage == "object":
        obj.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    elif damage == "manifest":
        text = man.read_bytes()
        man.write_bytes(text.replace(b'"deps":[[', b'"deps":[["/nonexistent",'))
    else:
        obj.unlink()
    assert g.build() == first
    assert g.compiles() == 2
    assert obj.read_bytes() == good and hashlib.sha256(good).hexdigest() == obj.name
    assert g.build() == first
    assert g.compiles() == 2  # repaired


def test_validate_uses_the_cache(g: Gadget) -> None:
    (g.dir / "gadget.yaml").write_text("name: cached\n")
    g.build()
    assert g.compiles() == 1
    out = g.gadget("validate", str(g.dir)).stdout
    assert "OK (schema and compiled object" in out
    assert g.compiles() == 1
    g.gadget("validate", str(g.dir), "--no-cache")
    assert g.compiles() == 2


def test_a_build_for_gadget_run_dir_uses_the_cache(g: Gadget) -> None:
    g.build()
    script = ("import sys\nfrom gadgetsmith.toolchain.build.driver import build_for_host\n"
              "obj, meta = build_for_host(sys.argv[1])\nprint(len(obj))\n")
    out = subprocess.run([sys.executable, "-c", script, str(g.dir)], env=g.env, text=True,
                         capture_output=True, check=True).stdout
    assert int(out) > 0
    assert g.compiles() == 1


def test_gadget_run_dir_uses_the_cache(g: Gadget, root: None) -> None:
    g.dir = g.root / "trace_open"
    shutil.copytree(REPO / "sample-gadgets" / "trace_open", g.dir)
    g.build()
    assert g.compiles() == 1
    run = ("run", str(g.dir), "--host", "--timeout", "0.5", "-o", "json")
    g.gadget(*run)
    assert g.compiles() == 1
    g.env["GADGETSMITH_BUILD_CACHE"] = "off"
    g.gadget(*run)
    assert g.compiles() == 2


def test_a_broken_gadget_yaml_is_reported_before_a_compile_error(g: Gadget) -> None:
    """gadget.yaml is parsed while clang compiles: its error still comes first."""
    (g.dir / "gadget.yaml").write_text("name: [unclosed\n")
    (g.dir / "program.bpf.c").write_text("int broken(\n")
    proc = subprocess.run([GADGET, "build", str(g.dir), "--arch", "amd64"], env=g.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "gadget.yaml" in proc.stderr.strip().splitlines()[-1], proc.stderr
    (g.dir / "gadget.yaml").write_text("name: fine\n")
    proc = subprocess.run([GADGET, "build", str(g.dir), "--arch", "amd64"], env=g.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "compile failed" in proc.stderr, proc.stderr
    assert g.entries("manifests") == []  # a failed compile stores nothing


def test_a_source_using_the_build_time_is_not_cached(g: Gadget) -> None:
    (g.dir / "local.h").write_text('#define LOCAL 2\nstatic const char built[] = __DATE__;\n')
    g.build()
    g.build()
    assert g.compiles() == 2
    assert g.entries("manifests") == []


def test_a_plain_build_line_imports_neither_typer_nor_click(g: Gadget) -> None:
    """`gadget build DIR -t REF` goes through cli/plainbuild.py (cli/entry.py): same output."""
    out, frameworks = entry_imports("build", str(g.dir), "-t", "plain:v1", "--arch", "amd64",
                                    env=g.env)
    first = out[0]
    assert frameworks == "[]", out
    assert first.startswith("Successfully built ghcr.io/inspektor-gadget/gadget/plain:v1@sha256:"), first
    typer_line = g.gadget("build", str(g.dir), "-t", "plain:v1", "--arch", "amd64", "--ig-version",
                          "v0.55.1").stdout.splitlines()[0]  # (--ig-version: the typer command)
    assert typer_line == first
