"""What `gadget version` reports: this client and every tool a build or a run depends on.

Each part is a :class:`Part`: the version found (or ``None``), where it was found, and when
it is missing what to do about it. Nothing here fails: a machine without clang can still
run gadgets, and `gadget version` is where a user looks to find out which part is missing.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from gadgetsmith.runtime.bpf import libbpf as lib
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.wasm.abi import API_VERSION
from gadgetsmith.toolchain import __version__
from gadgetsmith.toolchain.btfgen.minimize import find_bpftool
from gadgetsmith.toolchain.build.compile import find_toolchain
from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.sdk import IG_VERSION

KERNEL_BTF = "/sys/kernel/btf/vmlinux"


@dataclass(frozen=True)
class Part:
    name: str
    version: str | None
    detail: str = ""  # where it was found, or (version None) why not and the fix

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def client() -> Part:
    return Part("client", __version__, f"gadgetsmith, Python {platform.python_version()}")


def ig_api() -> Part:
    return Part("ig-api", IG_VERSION,
                f"the gadget SDK's headers and builder annotation; WASM API {API_VERSION}")


def clang() -> Part:
    try:
        tools = find_toolchain()
    except GadgetError as e:
        return Part("clang", None, f"{e.message} (needed by gadget build and gadget run DIR)")
    first = _first_line([tools.clang, "--version"])
    m = re.search(r"clang version (\S+)", first or "")
    return Part("clang", m.group(1) if m else None,
                f"{tools.clang}, llvm-strip {tools.strip}" if m
                else f"{tools.clang}: '--version' printed no clang version")


def bpftool() -> Part:
    try:
        tool = find_bpftool()
    except GadgetError as e:
        return Part("bpftool", None, f"{e.message} (needed by gadget build --btfgen)")
    version, _, rest = tool.version.removeprefix("bpftool ").partition("; ")
    return Part("bpftool", version, f"{tool.path}" + (f", {rest}" if rest else ""))


def libbpf() -> Part:
    try:
        return Part("libbpf", lib.version(), "libbpf.so.1, loaded by gadget run")
    except RuntimeGadgetError as e:
        return Part("libbpf", None, f"{e} (needed by gadget run)")


def kernel() -> Part:
    return Part("kernel", platform.release(), platform.machine())


def kernel_btf() -> Part:
    try:
        size = os.stat(KERNEL_BTF).st_size
    except OSError:
        return Part("kernel-btf", None,
                    f"no {KERNEL_BTF}: gadgets run here only with a btfgen layer "
                    "(gadget build --btfgen)")
    return Part("kernel-btf", "yes", f"{KERNEL_BTF}, {size / 1e6:.1f} MB" if size else KERNEL_BTF)


def collect() -> list[Part]:
    """Every part, in the order `gadget version` prints them."""
    return [client(), ig_api(), clang(), bpftool(), libbpf(), kernel(), kernel_btf()]


def _first_line(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.splitlines()[0] if proc.stdout else None

