"""Real Debian kernel packages for the btfgen tests, downloaded once and cached.

Two kernel versions (6.1 and 6.12, both bookworm's) for amd64 and arm64: the ``-cloud``
flavours, 21-34 MB each. They live in ``~/.cache/gadgetsmith/kernels`` (override with
``GADGETSMITH_KERNEL_CACHE``); a cached run downloads nothing. arm64 package lists come
from a private apt state under that folder, so the machine's dpkg architectures and apt
lists are left alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .conftest import skip_or_fail

SERIES = ("6.1", "6.12")
ARCHES = ("amd64", "arm64")
# linux-image-6.1.0-47-cloud-amd64_6.1.170-3_amd64.deb, linux-image-6.12.117+deb12-cloud-arm64_...
_NAME = {
    "6.1": r"linux-image-6\.1\.0-[0-9]+-cloud-{arch}",
    "6.12": r"linux-image-6\.12\.[0-9]+\+deb12-cloud-{arch}",
}


def cache_dir() -> Path:
    d = Path(os.environ.get("GADGETSMITH_KERNEL_CACHE")
             or Path.home() / ".cache" / "gadgetsmith" / "kernels")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _apt_options(arch: str) -> list[str]:
    if arch == "amd64" and _native_arch() == "amd64":
        return []
    state = cache_dir() / f"apt-{arch}"
    return ["-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
            "-o", f"APT::Architectures::={arch}", "-o", f"APT::Architecture={arch}"]


def _native_arch() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    return out.stdout.strip()


def _apt_lists(arch: str) -> list[str]:
    opts = _apt_options(arch)
    if opts:
        state = cache_dir() / f"apt-{arch}"
        lists = state / "lists"
        if not any(lists.glob("*_Packages*")):
            (lists / "partial").mkdir(parents=True, exist_ok=True)
            (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(["apt-get", "-q", *opts, "update"], capture_output=True, text=True,
                                  timeout=600)
            if proc.returncode != 0 or not any(lists.glob("*_Packages*")):
                skip_or_fail(f"apt-get update for {arch} failed: {proc.stderr.strip()[-300:]}")
    return opts


def _newest(series: str, arch: str) -> str:
    """The newest package of that series apt knows about."""
    opts = _apt_lists(arch)
    pattern = "^" + _NAME[series].format(arch=arch) + "$"
    proc = subprocess.run(["apt-cache", *opts, "search", "--names-only", pattern],
                          capture_output=True, text=True, timeout=300)
    names = [line.split(" ", 1)[0] for line in proc.stdout.splitlines() if line.strip()]
    if not names:
        skip_or_fail(f"apt knows no {pattern} package")

    def key(n: str) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", n)]

    return max(names, key=key)


def package(series: str, arch: str) -> Path:
    """A cached ``.deb`` of that kernel series and architecture (downloaded if missing)."""
    if shutil.which("apt-get") is None:
        skip_or_fail("apt-get is needed to download kernel packages")
    d = cache_dir()
    rx = re.compile(_NAME[series].format(arch=arch) + r"_[^_]+_" + arch + r"\.deb$")
    have = sorted(p for p in d.iterdir() if rx.match(p.name))
    if have:
        return have[-1]
    name = _newest(series, arch)
    proc = subprocess.run(["apt-get", "-q", *_apt_options(arch), "download", f"{name}:{arch}"],
                          cwd=d, capture_output=True, text=True, timeout=900)
    have = sorted(p for p in d.iterdir() if rx.match(p.name))
    if proc.returncode != 0 or not have:
        skip_or_fail(f"apt-get download {name}:{arch} failed: {proc.stderr.strip()[-300:]}")
    return have[-1]


def packages() -> dict[tuple[str, str], Path]:
    from gadgetsmith.toolchain.fsutil import locked

    with locked(cache_dir() / ".lock"):  # pytest-xdist workers share the cache
        return {(s, a): package(s, a) for s in SERIES for a in ARCHES}


def archive_of(debs: dict[tuple[str, str], Path], gadget) -> Path:
    """A btfhub-layout archive of ``debs`` made by ``gadget btf import`` (cached by the
    packages' names and sizes; a finished archive has a ``.complete`` marker)."""
    from gadgetsmith.toolchain.fsutil import locked

    with locked(cache_dir() / ".lock"):
        return _archive_of(debs, gadget)


def _archive_of(debs: dict[tuple[str, str], Path], gadget) -> Path:
    key = hashlib.sha256("\n".join(f"{p.name}:{p.stat().st_size}" for p in
                                   sorted(debs.values())).encode()).hexdigest()[:16]
    out = cache_dir() / f"archive-{key}"
    if (out / ".complete").exists():
        return out
    tmp = cache_dir() / f".archive-{key}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    gadget("btf", "import", *[str(p) for p in debs.values()], "--archive", str(tmp))
    (tmp / ".complete").write_text("")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out
