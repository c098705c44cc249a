"""The gadget C SDK shipped with gadgetsmith.

Layout (inside the installed package, so it is found both from a wheel and
from an editable checkout)::

    include/gadget/*.h            the gadget API headers (<gadget/macros.h> ...)
    include/gadget/amd64/vmlinux.h
    include/gadget/arm64/vmlinux.h
    compat/bpf/*.h                thin wrappers over the system libbpf headers that add
                                  what libbpf >= 1.2 has and Debian's 1.1 lacks
"""

from __future__ import annotations

import platform
from pathlib import Path

#: The Inspektor Gadget release whose gadget API these headers follow (and whose own
#: gadgets all build with them). Images say so in io.inspektor-gadget.builder.version,
#: the annotation ig checks before it runs a gadget ("Builder version not found in the
#: gadget image" otherwise); `gadget build --ig-version` names another release.
IG_VERSION = "v0.55.1"

SDK_ROOT = Path(__file__).resolve().parent
INCLUDE_ROOT = SDK_ROOT / "include"
COMPAT_DIR = SDK_ROOT / "compat"

#: gadget architecture name -> value of __TARGET_ARCH_<x>
ARCHES: dict[str, str] = {"amd64": "x86", "arm64": "arm64"}

_HOST_MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "amd64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "arm64": "aarch64-linux-gnu",
}


def host_arch() -> str:
    """This machine's architecture as images name it (amd64, arm64; else platform's name):
    what the runtime's loader says, without importing it (libbpf's bindings)."""
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def vmlinux_dir(arch: str) -> Path:
    """Directory holding the vmlinux.h for ``arch`` (amd64 or arm64)."""
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHES)}")
    return INCLUDE_ROOT / "gadget" / arch


def host_multiarch_include() -> Path | None:
    """The Debian multiarch include dir that provides <asm/types.h> for uapi headers."""
    triple = _HOST_MULTIARCH.get(platform.machine().lower())
    if triple is None:
        return None
    path = Path("/usr/include") / triple
    return path if path.is_dir() else None


def include_dirs(arch: str, root: Path | None = None) -> list[Path]:
    """Include path, in order, for compiling a gadget for ``arch``; ``root``: where the SDK
    is (a copy in a builder image), else this package's own copy and the host's headers."""
    base = SDK_ROOT if root is None else root
    dirs = [base / "compat", base / "include", base / "include" / "gadget" / vmlinux_dir(arch).name]
    triple = _HOST_MULTIARCH.get(platform.machine().lower())
    multiarch = host_multiarch_include() if root is None else (
        Path("/usr/include") / triple if triple else None)
    if multiarch is not None:
        dirs.append(multiarch)
    return dirs
