"""Compile gadget eBPF sources with the local clang, one object per architecture."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.build.cache import Lookup, ObjectCache, parse_depfile
from gadgetsmith.toolchain.errors import GadgetError, UsageError

SUPPORTED_CLANG = range(19, 14, -1)  # 19, 18, 17, 16, 15
CLANG_PACKAGE_HINT = "install it with 'apt-get install clang-19 llvm-19' or set CLANG=/path/to/clang"


@dataclass(frozen=True)
class Toolchain:
    clang: str
    strip: str

    def describe(self) -> str:
        return f"clang={self.clang} llvm-strip={self.strip}"


class CompileError(GadgetError):
    """clang rejected the source. ``detail`` holds clang's diagnostics verbatim."""


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return None


def find_toolchain(env: Mapping[str, str] | None = None) -> Toolchain:
    """Find clang (19..15) and a matching llvm-strip; CLANG / LLVM_STRIP override."""
    env = os.environ if env is None else env
    clang = env.get("CLANG")
    version: int | None = None
    if clang:
        resolved = _which(clang)
        if resolved is None:
            raise GadgetError(f"CLANG={clang} is not an executable: fix CLANG or unset it")
        clang = resolved
    else:
        for v in SUPPORTED_CLANG:
            for cand in (f"clang-{v}", f"/usr/lib/llvm-{v}/bin/clang"):
                resolved = _which(cand)
                if resolved:
                    clang, version = resolved, v
                    break
            if clang:
                break
        if clang is None:
            generic = _which("clang")
            if generic is not None and _clang_major(generic) in SUPPORTED_CLANG:
                clang = generic
                version = _clang_major(generic)
        if clang is None:
            raise GadgetError(f"no clang between 15 and 19 found: {CLANG_PACKAGE_HINT}")

    strip = env.get("LLVM_STRIP")
    if strip:
        resolved = _which(strip)
        if resolved is None:
            raise GadgetError(f"LLVM_STRIP={strip} is not an executable: fix LLVM_STRIP or unset it")
        strip = resolved
    else:
        candidates: list[str] = []
        if version is None:
            version = _clang_major(clang)
        if version is not None:
            candidates += [f"llvm-strip-{version}", f"/usr/lib/llvm-{version}/bin/llvm-strip"]
        sibling = Path(clang).resolve().parent / "llvm-strip"
        candidates += [str(sibling), "llvm-strip"]
        candidates += [f"llvm-strip-{v}" for v in SUPPORTED_CLANG]
        for cand in candidates:
            resolved = _which(cand)
            if resolved:
                strip = resolved
                break
        if not strip:
            raise GadgetError(
                "llvm-strip not found: install it with 'apt-get install llvm-19' "
                "or set LLVM_STRIP=/path/to/llvm-strip"
            )
    return Toolchain(clang=clang, strip=strip)


def _clang_major(clang: str) -> int | None:
    m = re.search(r"clang-(\d+)$", clang) or re.search(r"llvm-(\d+)/", clang)
    if m:
        return int(m.group(1))
    try:
        out = subprocess.run([clang, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"clang version (\d+)", out)
    return int(m.group(1)) if m else None


# cflags a build.yaml may add. Everything else is refused: options such as -o, -Xclang,
# -fplugin, -include or @file would let a build file change what gets compiled or where
# output goes.
_CFLAG_RE = re.compile(
    r"^(?:"
    r"-D[A-Za-z_][A-Za-z0-9_]*(?:=[A-Za-z0-9_.+\-/:\"']*)?"
    r"|-U[A-Za-z_][A-Za-z0-9_]*"
    r"|-W(?!l,|a,|p,)[a-z0-9][a-z0-9=\-+_]*"
    r"|-w"
    r"|-O[0-3s]"
    r"|-std=(?:gnu|c)(?:89|99|11|17|2x|23)"
    r"|-mcpu=(?:v[1-4]|generic)"
    r"|-I[^\s]+"
    r")$"
)


def check_cflags(cflags: Sequence[str], gadget_dir: Path, origin: str = "build.yaml") -> list[str]:
    """Validate extra cflags; ``-I`` paths must stay inside the gadget directory."""
    out: list[str] = []
    base = gadget_dir.resolve()
    for flag in cflags:
        if not isinstance(flag, str) or not _CFLAG_RE.match(flag):
            raise UsageError(
                f"{origin}: cflags entry {flag!r} is not allowed: only -D, -U, -W, -O, -std=, "
                "-mcpu=v1..v4 and -I<dir inside the gadget> are accepted"
            )
        if flag.startswith("-I"):
            inc = (base / flag[2:]).resolve()
            if inc != base and base not in inc.parents:
                raise UsageError(
                    f"{origin}: cflags entry {flag!r} points outside the gadget directory {base}"
                )
            flag = f"-I{inc}"
        out.append(flag)
    return out


SDK_PREFIX = "/gadgetsmith-sdk"

# The BPF instruction set the objects use. v3 (32-bit ALU and jumps; Linux 5.1+, and
# clang 20's default) instead of clang 19's v1: with v1, clang 19 turns a bounds-checked
# 32-bit index back into `index64 & mask` of the unchecked 64-bit register, whose range
# the verifier cannot narrow (IG's advise_seccomp: "invalid access to map value"), while
# with v3 the checked 32-bit register is the index. A build.yaml `cflags: [-mcpu=v1]`
# (a later -mcpu wins) gets v1 back for kernels older than 5.1.
BPF_CPU = "v3"


def _base_flags(toolchain: Toolchain, arch: str, cflags: Sequence[str],
                sdk_root: Path | None = None) -> list[str]:
    if arch not in sdk.ARCHES:
        raise UsageError(f"unknown architecture {arch!r}: use amd64 or arm64")
    argv = [toolchain.clang, "-target", "bpf", f"-mcpu={BPF_CPU}", "-O2", "-g", "-Wall"]
    argv += [f"-D__TARGET_ARCH_{sdk.ARCHES[arch]}"]
    # keep the install location of the SDK out of the object (BTF line info records file
    # names), so the same sources give the same bytes wherever gadgetsmith is installed
    # (or the builder image has its copy)
    argv += [f"-ffile-prefix-map={sdk.SDK_ROOT if sdk_root is None else sdk_root}={SDK_PREFIX}"]
    for d in sdk.include_dirs(arch, sdk_root):
        argv += ["-I", str(d)]
    argv += list(cflags)
    return argv


def clang_argv(
    toolchain: Toolchain,
    source: str,
    arch: str,
    output: str,
    cflags: Sequence[str] = (),
    pch: str | None = None,
    sdk_root: Path | None = None,
) -> list[str]:
    """The clang command line for one architecture (no shell involved)."""
    argv = _base_flags(toolchain, arch, cflags, sdk_root)
    if pch:
        argv += ["-include-pch", pch]
    argv += ["-c", source, "-o", output]
    return argv


# -- precompiled vmlinux.h ---------------------------------------------------------------
# Parsing the 2.5-3 MB vmlinux.h is most of a gadget's compile time. When a source's first
# preprocessor directive is `#include <vmlinux.h>`, nothing before it can change how the
# header is read, so it is safe to load a precompiled copy instead (its include guard then
# turns the #include into a no-op). The PCH is built once per (clang, arch, flags, header)
# and cached; set GADGETSMITH_NO_PCH=1 to compile exactly as plain clang does.
# The code is identical either way, but clang may order the BTF types of a PCH build
# differently from run to run, so reproducible builds (SOURCE_DATE_EPOCH set) skip it.

_FIRST_DIRECTIVE_RE = re.compile(r"^\s*#\s*(\w+)\s*(.*)$")


def starts_with_vmlinux(source: Path) -> bool:
    """True when the first preprocessor directive of ``source`` includes vmlinux.h."""
    try:
        text = Path(source).read_text(errors="replace")
    except OSError:
        return False
    in_block = False
    for line in text.splitlines():
        stripped = line.strip()
        if in_block:
            if "*/" in stripped:
                in_block = False
                stripped = stripped.split("*/", 1)[1].strip()
            else:
                continue
        while stripped.startswith("/*"):
            if "*/" in stripped[2:]:
                stripped = stripped[2:].split("*/", 1)[1].strip()
            else:
                in_block = True
                stripped = ""
        if not stripped or stripped.startswith("//"):
            continue
        m = _FIRST_DIRECTIVE_RE.match(stripped)
        if not m or m.group(1) != "include":
            return False
        return m.group(2).split("//")[0].strip() in ("<vmlinux.h>", '"vmlinux.h"')
    return False


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith" / "pch"


def pch_path(toolchain: Toolchain, arch: str, cflags: Sequence[str] = ()) -> Path | None:
    """Where the PCH of the SDK's vmlinux.h for these flags is cached (built or not), or
    None when PCHs are off (GADGETSMITH_NO_PCH, SOURCE_DATE_EPOCH) or inputs are missing."""
    if os.environ.get("GADGETSMITH_NO_PCH", "") not in ("", "0"):
        return None
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return None
    header = sdk.vmlinux_dir(arch) / "vmlinux.h"
    try:
        cst = os.stat(toolchain.clang)
        hst = header.stat()
    except OSError:
        return None
    flags = _base_flags(toolchain, arch, cflags)
    key = hashlib.sha256(
        "\0".join(flags + [str(cst.st_size), str(cst.st_mtime_ns), str(header),
                            str(hst.st_size), str(hst.st_mtime_ns)]).encode()
    ).hexdigest()[:32]
    return _cache_dir() / f"vmlinux-{arch}-{key}.pch"


def vmlinux_pch(toolchain: Toolchain, arch: str, cflags: Sequence[str] = ()) -> str | None:
    """Path of a cached PCH of the SDK's vmlinux.h for these flags, building it if needed.

    Returns None (compile without PCH) when disabled or when building it fails.
    """
    pch = pch_path(toolchain, arch, cflags)
    if pch is None:
        return None
    if pch.is_file():
        return str(pch)
    header = sdk.vmlinux_dir(arch) / "vmlinux.h"
    flags = _base_flags(toolchain, arch, cflags)
    try:
        pch.parent.mkdir(parents=True, exist_ok=True)
        tmp = pch.parent / f".{pch.name}.{os.getpid()}.tmp"
        proc = subprocess.run(flags + ["-x", "c-header", str(header), "-o", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, pch)
    except OSError:
        return None
    return str(pch)


def compile_program(
    source: Path,
    arch: str,
    output: Path,
    toolchain: Toolchain | None = None,
    cflags: Sequence[str] = (),
    cwd: Path | None = None,
    cache: ObjectCache | None = None,
) -> Path:
    """Compile ``source`` for ``arch`` into ``output`` (DWARF stripped, BTF kept); with
    ``cache``, an object compiled from the same inputs before is served without clang.

    The object is written to a temporary name next to ``output`` and renamed into place
    only when clang and llvm-strip both succeed. Raises :class:`CompileError` carrying
    clang's diagnostics.
    """
    toolchain = toolchain or find_toolchain()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    pch = pch_path(toolchain, arch, cflags) if starts_with_vmlinux(source) else None
    steps = compile_steps(toolchain, source, arch, tmp.resolve(), cflags, cwd,
                          pch=str(pch) if pch else None)
    lookup = cache.key(steps.clang, steps.strip, str(tmp.resolve()), source, cwd) if cache else None
    cached = cache.fetch(lookup) if cache is not None and lookup is not None else None
    if cached is not None:
        tmp.write_bytes(cached)
        os.replace(tmp, output)
        return output
    if pch is not None and vmlinux_pch(toolchain, arch, cflags) is None:  # no PCH after all
        steps = compile_steps(toolchain, source, arch, tmp.resolve(), cflags, cwd)
        lookup = None
    depfile = tmp.with_name(tmp.name + ".d")
    try:
        deps = ["-MD", "-MF", str(depfile)] if lookup is not None else []
        proc = subprocess.run(steps.clang + deps, capture_output=True, text=True, cwd=cwd)
        steps.check_clang(proc.returncode, proc.stderr)
        sp = subprocess.run(steps.strip, capture_output=True, text=True)
        steps.check_strip(sp.returncode, sp.stderr)
        if cache is not None and lookup is not None:
            _store(cache, lookup, depfile, tmp, cwd)
        os.replace(tmp, output)
    finally:
        for leftover in (tmp, depfile):
            if leftover.exists():
                leftover.unlink()
    return output


def _store(cache: ObjectCache, lookup: Lookup, depfile: Path, obj: Path, cwd: Path | None) -> None:
    """Keep the object with what clang read (the PCH is in the key by name, which says
    which clang, flags and vmlinux.h made it)."""
    try:
        deps = parse_depfile(depfile.read_text(errors="surrogateescape"), cwd)
    except OSError:
        return
    cache.put(lookup, deps, obj.read_bytes())


@dataclass(frozen=True)
class CompileSteps:
    """The two commands that make one architecture's object: clang, then llvm-strip -g
    (DWARF out, BTF kept). The host build runs them here, the builder in its container
    (``toolchain``/``sdk_root`` naming the image's copies), so both run the same argv."""

    arch: str
    cwd: Path | None
    clang: list[str]
    strip: list[str]

    def check_clang(self, returncode: int, stderr: str) -> None:
        if returncode != 0:
            first = _first_error(stderr) or f"clang exited with status {returncode}"
            raise CompileError(f"{self.arch}: compile failed: {first}", detail=stderr.rstrip())

    def check_strip(self, returncode: int, stderr: str) -> None:
        if returncode != 0:
            raise CompileError(f"{self.arch}: llvm-strip failed: {stderr.strip()}")


def compile_steps(toolchain: Toolchain, source: Path, arch: str, output: Path,
                  cflags: Sequence[str] = (), cwd: Path | None = None, pch: str | None = None,
                  sdk_root: Path | None = None) -> CompileSteps:
    """The argv lists that compile ``source`` for ``arch`` into ``output`` (run in ``cwd``:
    the source is named relative to it, and its path is mapped to ``.`` in the object)."""
    src = str(source)
    if cwd is not None:
        try:
            src = os.path.relpath(source, cwd)
        except ValueError:
            src = str(source)
    if src.startswith("-"):
        src = "./" + src
    flags = list(cflags)
    if cwd is not None:
        flags.append(f"-ffile-prefix-map={Path(cwd).resolve()}=.")
    argv = clang_argv(toolchain, src, arch, str(output), flags, pch=pch, sdk_root=sdk_root)
    return CompileSteps(arch, cwd, argv, [toolchain.strip, "-g", str(output)])


def _first_error(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if ": error:" in line or line.startswith("error:") or ": fatal error:" in line:
            return line.strip()
    return None


def compile_arches(
    source: Path,
    arches: Sequence[str],
    outdir: Path,
    toolchain: Toolchain | None = None,
    cflags: Sequence[str] = (),
    cwd: Path | None = None,
    cache: ObjectCache | None = None,
) -> dict[str, Path]:
    """Compile for several architectures in parallel: ``{arch: outdir/<arch>.bpf.o}``."""
    toolchain = toolchain or find_toolchain()
    for a in arches:
        if a not in sdk.ARCHES:
            raise UsageError(f"unknown architecture {a!r}: use amd64 or arm64")
    if len(arches) == 1:
        a = arches[0]
        return {a: compile_program(source, a, outdir / f"{a}.bpf.o", toolchain, cflags, cwd, cache)}
    with ThreadPoolExecutor(max_workers=len(arches)) as pool:
        futures = {
            a: pool.submit(compile_program, source, a, outdir / f"{a}.bpf.o", toolchain, cflags, cwd,
                           cache)
            for a in arches
        }
        results: dict[str, Path] = {}
        errors: list[CompileError] = []
        for a, fut in futures.items():
            try:
                results[a] = fut.result()
            except CompileError as e:
                errors.append(e)
    if errors:
        # diagnostics are usually identical for both arches: show the first, name all
        err = errors[0]
        if len(errors) > 1 and all(e.detail == err.detail for e in errors):
            raise CompileError(err.message.split(": ", 1)[1], detail=err.detail)
        raise err
    return results
