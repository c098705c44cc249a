"""Bad input: one clear line naming the problem, exit code 1 or 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import run_gadget


def check_error(res, *needles: str, code: int | None = None) -> None:
    assert res.returncode in (1, 2), res
    if code is not None:
        assert res.returncode == code, res
    assert "Traceback" not in res.stderr, res
    err_lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1, res
    for n in needles:
        assert n in err_lines[0], (n, res)


def test_missing_program(tmp_path: Path, store: Path) -> None:
    # a gadget.yaml alone builds (as ig builds it); a folder with nothing to build does not
    d = tmp_path / "empty"
    d.mkdir()
    (d / "notes.txt").write_text("x\n")
    check_error(run_gadget("build", str(d), store=store, check=False), "program.bpf.c", code=2)


def test_missing_directory(tmp_path: Path, store: Path) -> None:
    res = run_gadget("build", str(tmp_path / "nope"), store=store, check=False)
    check_error(res, "no such gadget directory", code=2)


@pytest.mark.usefixtures("clang_available")
def test_c_syntax_error_shows_clang_diagnostics(tiny_gadget: Path, store: Path) -> None:
    src = tiny_gadget / "program.bpf.c"
    src.write_text(src.read_text().replace("e->pid = ", "e->pid = = "))
    res = run_gadget("build", str(tiny_gadget), "-t", "bad:1", store=store, check=False)
    check_error(res, "compile failed", "program.bpf.c:")
    # clang's own diagnostic, with file:line:col, is shown above the error line
    assert "program.bpf.c:" in res.stderr.split("error: compile failed")[0]
    assert ": error:" in res.stderr
    assert run_gadget("list", "--format", "json", store=store).json() == []


def test_unknown_arch(tiny_gadget: Path, store: Path) -> None:
    res = run_gadget("build", str(tiny_gadget), "--arch", "riscv", store=store, check=False)
    check_error(res, "riscv", "amd64", code=2)


@pytest.mark.parametrize(
    "content, needle",
    [
        ("ebpfsource: [unclosed\n", "malformed YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("ebpfsrc: program.bpf.c\n", "unknown key 'ebpfsrc'"),
        ("ebpfsource: ../../etc/passwd\n", "outside the gadget directory"),
        ("ebpfsource: missing.c\n", "does not exist"),
        ("cflags: ['-Xclang', '-load']\n", "not allowed"),
        ("cflags: ['-o/tmp/evil']\n", "not allowed"),
        ("cflags: ['-I/etc']\n", "outside the gadget directory"),
        ("cflags: 5\n", "list of strings"),
    ],
)
def test_malformed_build_yaml(tiny_gadget: Path, store: Path, content: str, needle: str) -> None:
    (tiny_gadget / "build.yaml").write_text(content)
    res = run_gadget("build", str(tiny_gadget), store=store, check=False)
    check_error(res, "build.yaml", needle, code=2)


def test_malformed_gadget_yaml(tiny_gadget: Path, store: Path) -> None:
    (tiny_gadget / "gadget.yaml").write_text("name: [x\n")
    res = run_gadget("build", str(tiny_gadget), store=store, check=False)
    check_error(res, "gadget.yaml", "malformed YAML", code=2)


def test_unknown_reference(store: Path) -> None:
    for cmd in (["inspect", "nothere:v1"], ["rm", "nothere:v1"], ["tag", "nothere", "x:1"]):
        res = run_gadget(*cmd, store=store, check=False)
        check_error(res, "unknown reference", "nothere", code=1)


def test_run_unknown_reference_fails_before_asking_container_runtimes(store: Path) -> None:
    # the image is looked up first, once: no runtime is queried (nor warned about) for an
    # image that does not exist
    res = run_gadget("run", "nothere:v1", "--runtimes", "containerd,cri-o", store=store,
                     check=False)
    check_error(res, "unknown reference 'nothere:v1'", "build or pull it first", code=1)
    assert res.stderr.splitlines() == [
        "error: unknown reference 'nothere:v1': build or pull it first (see 'gadget list')"]


def test_invalid_reference(store: Path, tiny_gadget: Path) -> None:
    check_error(run_gadget("inspect", "https://x/y", store=store, check=False), "scheme")
    check_error(run_gadget("build", str(tiny_gadget), "-t", "UPPER/Case:x", store=store,
                           check=False), "--tag")


def test_store_that_is_not_an_oci_layout(tmp_path: Path) -> None:
    bogus = tmp_path / "notastore"
    bogus.mkdir()
    (bogus / "somefile.txt").write_text("hello")
    res = run_gadget("list", store=bogus, check=False)
    check_error(res, str(bogus), "not an OCI image layout")
    assert sorted(p.name for p in bogus.iterdir()) == ["somefile.txt"]
    res = run_gadget("--store", str(bogus / "somefile.txt"), "list", check=False)
    check_error(res, "not a directory")


def test_debug_shows_traceback(store: Path) -> None:
    res = run_gadget("--debug", "inspect", "nothere", store=store, check=False)
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_usage_errors_are_one_line() -> None:
    res = run_gadget("build", check=False)
    check_error(res, "Missing argument", code=2)
    res = run_gadget("frobnicate", check=False)
    check_error(res, "frobnicate", code=2)


def test_version_and_help() -> None:
    from gadgetsmith.toolchain import __version__

    assert run_gadget("--version").stdout.strip() == f"gadget {__version__}"
    out = run_gadget("--help").stdout
    listed = [line.split()[0] for line in out.split("Commands:", 1)[1].splitlines() if line.strip()]
    assert run_gadget("--help", "push").stdout == out  # root help, whatever follows
    for cmd in ("build", "list", "inspect", "tag", "rm", "run", "containers", "push", "pull",
                "copy", "export", "import", "sign", "verify", "metadata", "registry-check"):
        assert cmd in listed
    # every command listed has its own help with an example, also after root options
    # (the CLI builds only the named command: its name must map back to the command)
    for cmd in listed:
        sub = run_gadget("--debug", cmd, "--help").stdout
        assert f"Usage: gadget {cmd} " in sub, cmd
        example = " ".join(sub.split()).split("Example: ", 1)[-1]
        assert "Example: " in sub and f"gadget {cmd}" in example, cmd


def test_empty_store_lists_nothing(store: Path) -> None:
    assert run_gadget("list", "--format", "json", store=store).json() == []


def test_clang_override_errors(tiny_gadget: Path, store: Path) -> None:
    res = run_gadget("build", str(tiny_gadget), store=store, check=False,
                     env={"CLANG": "/nonexistent/clang"})
    check_error(res, "CLANG=/nonexistent/clang", "not an executable", code=1)
    res = run_gadget("build", str(tiny_gadget), store=store, check=False,
                     env={"LLVM_STRIP": "no-such-llvm-strip"})
    check_error(res, "LLVM_STRIP=no-such-llvm-strip", code=1)


def test_missing_clang_names_the_debian_package() -> None:
    from gadgetsmith.toolchain.build import compile as comp
    from gadgetsmith.toolchain.errors import GadgetError

    saved = comp.SUPPORTED_CLANG
    comp.SUPPORTED_CLANG = range(99, 98, -1)  # no such clang anywhere
    try:
        with pytest.raises(GadgetError) as err:
            comp.find_toolchain(env={"PATH": "/nonexistent"})
    finally:
        comp.SUPPORTED_CLANG = saved
    assert "apt-get install clang-19" in str(err.value)
