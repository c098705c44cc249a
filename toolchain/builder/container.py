"""A build in the builder container: the host build's own compile steps (the same argv, from
:func:`compile_steps`, naming the image's clang and SDK copy), each run by ``exec``; a C
WASM module too (the image has wasi-libc and lld-19), while Go and Rust modules are built on
the host with a note (bookworm's Go is 1.19; IG's WASM API needs 1.24).

The container runs ``sleep infinity`` with no network, the gadget directory mounted
read-only and the output directory writable, both at their host paths (so the objects'
file names match a host build's), as the caller's uid:gid on a rootful engine and as root
on a rootless one (whose root is the caller). It is removed on every way out, Ctrl-C and
SIGTERM included; one a killed `gadget` left behind is removed by the next builder build.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from docker.errors import DockerException
from docker.types import Mount
from gadgetsmith.toolchain.build import wasm
from gadgetsmith.toolchain.build.compile import CompileSteps, Toolchain, compile_steps
from gadgetsmith.toolchain.build.wasm import WasmBuild
from gadgetsmith.toolchain.builder import BuilderOptions
from gadgetsmith.toolchain.builder.engine import Engine, EngineError, owner_labels, remove_container
from gadgetsmith.toolchain.builder.image import LABEL, sdk_digest
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import owned_tempdir
from gadgetsmith.toolchain.metadata import buildspec


class BuilderContainer:
    """``with BuilderContainer(...) as c: c.run(argv, cwd)``: created and started on entry,
    killed and removed on exit, whatever the exit."""

    def __init__(self, engine: Engine, image: str, read_only: Sequence[Path],
                 writable: Sequence[Path]) -> None:
        self.engine = engine
        self.image = image
        self.mounts = [Mount(str(p), str(p), type="bind", read_only=True) for p in read_only]
        self.mounts += [Mount(str(p), str(p), type="bind", read_only=False) for p in writable]
        self.container: Any = None
        #: who runs the steps: the caller on a rootful engine, the container's root (which
        #: is the caller) on a rootless one
        self.user = ""
        self._on_term: Any = None
        #: known before the container exists, so an interrupted create is found and removed
        self.name = f"gadgetsmith-builder-{os.getpid()}-{secrets.token_hex(4)}"

    def __enter__(self) -> BuilderContainer:
        self.engine.remove_stale_containers()
        self._on_term = _interrupt_on_sigterm()
        try:
            self.container = self.engine.client.containers.create(
                self.image, command=["sleep", "infinity"], name=self.name, stop_signal="SIGKILL",
                user=f"{os.getuid()}:{os.getgid()}", network_mode="none",
                mounts=self.mounts, labels=owner_labels(), working_dir="/",
                detach=True)
            self.container.start()
            self.user = "0:0" if self.engine.rootless else f"{os.getuid()}:{os.getgid()}"
        except BaseException as e:
            self._remove()
            self._restore_sigterm()
            if isinstance(e, (DockerException, OSError)):
                raise EngineError(f"builder container from {self.image}: {_first_line(e)}") from None
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._remove()
        finally:
            self._restore_sigterm()

    def _restore_sigterm(self) -> None:
        if self._on_term is not None:
            signal.signal(signal.SIGTERM, self._on_term)
            self._on_term = None

    def _remove(self) -> None:
        if self.container is None:
            try:
                self.container = self.engine.client.containers.get(self.name)
            except (DockerException, OSError):
                return
        remove_container(self.container)
        self.container = None

    def run(self, argv: Sequence[str], cwd: Path | None) -> tuple[int, str]:
        """Exit status and stderr (stdout after it) of ``argv`` run in the container."""
        try:
            code, (out, err) = self.container.exec_run(
                list(argv), user=self.user, workdir=str(cwd or "/"), demux=True)
        except (DockerException, OSError) as e:
            raise EngineError(f"builder container: exec {argv[0]}: {_first_line(e)}") from None
        text = (err or b"").decode(errors="replace") + (out or b"").decode(errors="replace")
        return int(code if code is not None else 1), text


def _interrupt_on_sigterm() -> Any:
    """SIGTERM (a CI job cancelled) ends the build as Ctrl-C does, so the container is
    removed on the way out; returns the handler it replaced (None off the main thread)."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _first_line(e: Exception) -> str:
    text = str(getattr(e, "explanation", None) or e).strip().splitlines()
    return text[0] if text else type(e).__name__


def builder_toolchain(labels: dict[str, str], image: str) -> tuple[Toolchain, Path]:
    """The image's clang, llvm-strip and SDK copy, from its labels."""
    try:
        return (Toolchain(labels[f"{LABEL}.clang"], labels[f"{LABEL}.llvm-strip"]),
                Path(labels[f"{LABEL}.sdk.path"]))
    except KeyError:
        raise UsageError(f"--builder-image {image}: not a gadgetsmith builder image (no {LABEL}.* "
                         "labels): make one with 'gadget builder create'") from None


def sdk_note(labels: dict[str, str], image: str) -> list[str]:
    if labels.get(f"{LABEL}.sdk.digest") == sdk_digest():
        return []
    return [f"warning: builder image {image} (made by gadgetsmith "
            f"{labels.get(f'{LABEL}.version', '?')}) has other SDK headers than this gadgetsmith: "
            "objects may differ from a host build ('gadget builder create' makes a current one)"]


def _one_arch(c: BuilderContainer, steps: CompileSteps, tmp: Path, out: Path) -> Path:
    try:
        code, log = c.run(steps.clang, steps.cwd)
        steps.check_clang(code, log)
        code, log = c.run(steps.strip, None)
        steps.check_strip(code, log)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _c_module(c: BuilderContainer, source: Path, out: Path, clang: str, sdk_root: Path,
              origin: str) -> WasmBuild:
    """A C WASM module, compiled in the builder (wasi-libc, lld-19 and the SDK are there)."""
    argv = wasm.c_argv(clang, source, out, sdk_root / "include")
    t0 = time.monotonic()
    code, log = c.run(argv, source.parent)
    wasm.check_c_compile(code, log)
    data = out.read_bytes()
    out.unlink()
    wasm.check_module(data, None, origin)
    return WasmBuild(data, "c", time.monotonic() - t0, argv)


class _Build:
    """One gadget build in the builder: its image, its toolchain there and what it runs."""

    def __init__(self, spec: buildspec.BuildSpec, options: BuilderOptions) -> None:
        self.spec, self.options = spec, options
        self.origin = str(spec.build_file or spec.gadget_dir)
        self.notes: list[str] = []
        self.host_wasm = spec.wasm is not None and spec.wasm.suffix != ".c"
        if spec.wasm is not None and self.host_wasm:
            wasm.check_toolchain(spec.wasm)
            if spec.wasm.suffix != ".wasm":
                self.notes.append(
                    f"note: {self.origin}: the WASM module {spec.wasm.name} is built on this host: "
                    "the builder image has no Go or Rust toolchain (Debian bookworm's Go is 1.19, "
                    "IG's WASM API needs 1.24)")
        self.in_container = spec.ebpf_source is not None or not self.host_wasm and spec.wasm is not None

    def run(self, arches: Sequence[str], outdir: Path,
            cflags: Sequence[str]) -> tuple[dict[str, Path], WasmBuild | None, list[str]]:
        with ThreadPoolExecutor(max_workers=1) as host:
            module = (host.submit(wasm.build_wasm, self.spec.wasm, outdir, self.origin)
                      if self.spec.wasm is not None and self.host_wasm else None)
            objects, c_module = self._in_container(arches, outdir, cflags) if self.in_container \
                else ({}, None)
            return objects, module.result() if module else c_module, self.notes

    def _in_container(self, arches: Sequence[str], outdir: Path,
                      cflags: Sequence[str]) -> tuple[dict[str, Path], WasmBuild | None]:
        engine = Engine.connect()
        image = engine.ensure_image(self.options.image, self.options.pull)
        labels = dict(image.labels or {})
        toolchain, sdk_root = builder_toolchain(labels, self.options.image)
        self.notes += sdk_note(labels, self.options.image)
        gadget_dir, outdir = self.spec.gadget_dir.resolve(), outdir.resolve()
        # clang writes into a directory of this build only, mounted writable (a killed clang
        # leaves its temporary files there, and the directory goes when the build ends)
        with owned_tempdir(".builder-", outdir) as work, \
                BuilderContainer(engine, self.options.image, [gadget_dir], [work]) as c:
            pool = ThreadPoolExecutor(max_workers=len(arches) + 1)
            try:
                futures: dict[str, Future[Path]] = {}
                if self.spec.ebpf_source is not None:
                    source = self.spec.ebpf_source.resolve()
                    for a in arches:
                        steps = compile_steps(toolchain, source, a, work / f"{a}.bpf.o", cflags,
                                              gadget_dir, sdk_root=sdk_root)
                        futures[a] = pool.submit(_one_arch, c, steps, work / f"{a}.bpf.o",
                                                 outdir / f"{a}.bpf.o")
                module = None if self.host_wasm or self.spec.wasm is None else pool.submit(
                    _c_module, c, self.spec.wasm.resolve(), work / "program.wasm", toolchain.clang,
                    sdk_root, self.origin)
                objects = {a: f.result() for a, f in futures.items()}
                return objects, module.result() if module else None
            finally:
                pool.shutdown(wait=False, cancel_futures=True)


def compile_in_builder(spec: buildspec.BuildSpec, arches: Sequence[str], outdir: Path,
                       cflags: list[str], options: BuilderOptions,
                       ) -> tuple[dict[str, Path], WasmBuild | None, list[str]]:
    """The driver's compiler for `gadget build --builder`: ``{arch: outdir/<arch>.bpf.o}``
    and a C WASM module compiled in the builder (Go and Rust modules on this host), and
    notes for the user."""
    return _Build(spec, options).run(arches, outdir, cflags)
