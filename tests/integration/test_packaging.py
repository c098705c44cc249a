"""The wheel carries the SDK headers, schemas and templates, found at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from ..conftest import REPO


def test_wheel_ships_sdk_schemas_and_templates(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("gadgetsmith-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for must in (
        "gadgetsmith/toolchain/cli/app.py",
        "gadgetsmith/runtime/oci/layout.py",
        "gadgetsmith/toolchain/sdk/include/gadget/macros.h",
        "gadgetsmith/toolchain/sdk/include/gadget/amd64/vmlinux.h",
        "gadgetsmith/toolchain/sdk/include/gadget/arm64/vmlinux.h",
        "gadgetsmith/toolchain/sdk/compat/bpf/bpf_tracing.h",
        "gadgetsmith/templates/__init__.py",
        "gadgetsmith/schemas/__init__.py",
    ):
        assert must in names, must
    # gadget init's template, dot files included (a plain ** glob skips them)
    template = REPO / "templates" / "gadget"
    for path in template.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            shipped = f"gadgetsmith/templates/gadget/{path.relative_to(template).as_posix()}"
            assert shipped in names, f"{shipped} missing: see package-data in pyproject.toml"
    # every sub-package of the source tree is shipped (pyproject lists them one by one)
    for src, pkg in (("toolchain", "gadgetsmith/toolchain"), ("runtime", "gadgetsmith/runtime")):
        for init in (REPO / src).rglob("__init__.py"):
            shipped = f"{pkg}/{init.relative_to(REPO / src).as_posix()}"
            assert shipped in names, f"{shipped} missing: add its package to pyproject.toml"
    assert not any(n.startswith(("tests/", "sample-gadgets/", "bench/")) for n in names)


def test_installed_wheel_finds_its_sdk(tmp_path: Path) -> None:
    """A non-editable install resolves the SDK inside site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps",
                    str(REPO)], check=True, capture_output=True)
    out = subprocess.run(
        [str(py), "-c",
         "from gadgetsmith.toolchain import sdk; print(sdk.INCLUDE_ROOT); "
         "print((sdk.vmlinux_dir('arm64') / 'vmlinux.h').is_file())"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.split()
    assert "site-packages" in out[0] and out[1] == "True"
    # gadget init's template (toolchain.scaffold.template_dir()), dot directories included
    out = subprocess.run(
        [str(py), "-c",
         "from importlib import resources; d = resources.files('gadgetsmith.templates') / 'gadget'; "
         "print(d); print((d / '{{cookiecutter.name}}' / '.github' / 'workflows' / 'gadget.yml').is_file())"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.split()
    assert "site-packages" in out[0] and out[1] == "True"
