"""``bpftool gen min_core_btf`` over many kernels, in parallel, cached.

One job per (kernel, object): the kernel BTF is read from the archive (a ``.tar.xz`` is
decompressed in memory, never next to the user's file), written to a private temp folder
and minimised against the object for the kernel's architecture. Results come from the
cache (:mod:`.cache`) when the same kernel BTF, object and bpftool met before.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from gadgetsmith.toolchain.btfgen import archive
from gadgetsmith.toolchain.btfgen.archive import KernelEntry
from gadgetsmith.toolchain.btfgen.cache import BtfgenCache
from gadgetsmith.toolchain.btfgen.core import try_core_digest
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.fsutil import owned_tempdir

Progress = Callable[[int, int, KernelEntry], None]


@dataclass(frozen=True)
class Bpftool:
    path: str
    version: str  # both lines of `bpftool version`'s first two, e.g. "bpftool v7.1.0; libbpf v1.1"


_tool_lock = threading.Lock()
_tool: Bpftool | None = None


def find_bpftool() -> Bpftool:
    """This machine's bpftool and its version (asked once per process)."""
    global _tool
    with _tool_lock:
        if _tool is not None:
            return _tool
        exe = (os.environ.get("BPFTOOL") or shutil.which("bpftool")
               or next((p for p in ("/usr/sbin/bpftool", "/sbin/bpftool") if os.path.exists(p)), None))
        if exe is None:
            raise GadgetError("bpftool not found: install it (apt-get install bpftool) or set BPFTOOL")
        try:
            proc = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=30)
        except OSError as e:
            raise GadgetError(f"{exe}: cannot run it ({e.strerror})") from None
        # "<argv0> v7.1.0\nusing libbpf v1.1\n..."
        m = re.match(r"^\S*?bpftool v(\S+)\s*\n(?:using libbpf v(\S+))?", proc.stdout)
        if proc.returncode != 0 or m is None:
            raise GadgetError(f"{exe}: 'bpftool version' did not print a version")
        version = f"bpftool v{m.group(1)}" + (f"; libbpf v{m.group(2)}" if m.group(2) else "")
        _tool = Bpftool(exe, version)
        return _tool


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_key(data: bytes) -> str:
    """The object's part of the cache key: what ``min_core_btf`` reads of it (its CO-RE
    relocations and the local types they reach, see :func:`.core.core_digest`), so the
    same program compiled again hits the cache even when clang numbered its types in
    another order; the whole object's digest when it cannot be read."""
    got = try_core_digest(data)
    return f"core:{got}" if got else f"sha256:{digest(data)}"


@dataclass
class Minimized:
    entry: KernelEntry
    arch: str
    data: bytes
    cached: bool


@dataclass
class MinimizeResult:
    by_arch: dict[str, list[Minimized]] = field(default_factory=dict)
    seconds: float = 0.0
    jobs: int = 1
    bpftool: str = ""

    @property
    def kernels(self) -> int:
        return sum(len(v) for v in self.by_arch.values())

    @property
    def cached(self) -> int:
        return sum(m.cached for v in self.by_arch.values() for m in v)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def minimize(
    objects: Mapping[str, bytes],
    kernels: Mapping[str, Sequence[KernelEntry]],
    cache: BtfgenCache | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    tool: Bpftool | None = None,
) -> MinimizeResult:
    """Minimise every kernel of ``kernels[arch]`` against ``objects[arch]``.

    The result lists each architecture's kernels in the order given. The first failure
    stops the remaining jobs and is raised (a one-line error naming the archive file).
    """
    tool = tool or find_bpftool()
    jobs = jobs or default_jobs()
    start = time.monotonic()
    result = MinimizeResult({a: [] for a in kernels}, jobs=jobs, bpftool=tool.version)
    if not any(kernels[a] for a in kernels):
        return result
    with owned_tempdir("gadget-btfgen-") as tmp:
        job = _Job(Path(tmp), tool, cache)
        for a in kernels:
            job.add_object(a, objects[a])
        slots = _run_all(job, kernels, jobs, progress)
    for (arch, _j), m in sorted(slots.items()):
        result.by_arch[arch].append(m)
    result.seconds = time.monotonic() - start
    return result


class _Job:
    """What every minimisation of one run shares: the temp folder (the objects written
    once), bpftool and the cache."""

    def __init__(self, tmp: Path, tool: Bpftool, cache: BtfgenCache | None) -> None:
        self.tmp = tmp
        self.tool = tool
        self.cache = cache
        self.obj_paths: dict[str, Path] = {}
        self.obj_digests: dict[str, str] = {}

    def add_object(self, arch: str, data: bytes) -> None:
        self.obj_digests[arch] = object_key(data)
        self.obj_paths[arch] = self.tmp / f"{arch}.bpf.o"
        self.obj_paths[arch].write_bytes(data)

    def __call__(self, i: int, arch: str, entry: KernelEntry) -> Minimized:
        cache, odig, version = self.cache, self.obj_digests[arch], self.tool.version
        kdig = cache.input_digest(entry.path) if cache else None
        if kdig is not None and cache is not None:
            hit = cache.get(kdig, odig, version)
            if hit is not None:
                return Minimized(entry, arch, hit, True)
        try:
            raw = entry.path.read_bytes()
        except OSError as e:
            raise UsageError(f"{entry.path}: cannot read it ({e.strerror})") from None
        kdig = digest(raw)  # the kernel's file as the archive has it (.btf or .btf.tar.xz)
        if cache is not None:
            cache.remember_input(entry.path, kdig)
            hit = cache.get(kdig, odig, version)
            if hit is not None:
                return Minimized(entry, arch, hit, True)
        src = self.tmp / f"k{i}.btf"
        src.write_bytes(archive.read_btf(entry, raw))  # the decompressed BTF is not kept
        del raw
        data = self._run_bpftool(src, i, arch, entry)
        archive.check_btf(data, f"bpftool's output for {entry.path}")
        if cache is not None:
            cache.put(kdig, odig, version, data)
        return Minimized(entry, arch, data, False)

    def _run_bpftool(self, src: Path, i: int, arch: str, entry: KernelEntry) -> bytes:
        out = self.tmp / f"m{i}.btf"
        try:
            proc = subprocess.run(
                [self.tool.path, "gen", "min_core_btf", str(src), str(out), str(self.obj_paths[arch])],
                capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise _bpftool_error(entry, proc.stderr)
            return out.read_bytes()
        finally:
            src.unlink(missing_ok=True)
            out.unlink(missing_ok=True)


def _run_all(job: _Job, kernels: Mapping[str, Sequence[KernelEntry]], jobs: int,
             progress: Progress | None) -> dict[tuple[str, int], Minimized]:
    """Every (arch, kernel) job on a pool of ``jobs`` threads; the first failure cancels
    the rest and is raised."""
    slots: dict[tuple[str, int], Minimized] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="btfgen")
    try:
        futures: dict[Future[Minimized], tuple[str, int]] = {}
        for arch in kernels:
            for j, e in enumerate(kernels[arch]):
                futures[pool.submit(job, len(futures), arch, e)] = (arch, j)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                exc = f.exception()
                if exc is not None:
                    for p in pending:
                        p.cancel()
                    raise exc
                m = f.result()
                slots[futures[f]] = m
                if progress is not None:
                    progress(len(slots), len(futures), m.entry)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return slots


def _bpftool_error(entry: KernelEntry, stderr: str) -> GadgetError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = lines[0] if lines else "no message"
    first = first.removeprefix("Error: ")
    if "BTF file" in first or "parsing" in first:
        return UsageError(f"{entry.path}: bpftool cannot read this kernel BTF ({first}): "
                          "delete it or fetch it again")
    if ".BTF.ext" in first:
        return UsageError(f"the eBPF object has no CO-RE relocations (.BTF.ext), so it needs no "
                          f"btfgen bundle: build without --btfgen ({first})")
    return GadgetError(f"{entry.path}: bpftool gen min_core_btf failed: {first}")
