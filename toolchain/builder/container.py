"""A build in the builder container: the host build's own compile steps (the same argv, from
:func:`compile_steps`, naming the image's clang and SDK copy), each run by ``exec``.

The container runs ``sleep infinity`` with no network, the gadget directory mounted
read-only and the output directory writable, both at their host paths (so the objects'
file names match a host build's), as the caller's uid:gid on a rootful engine and as root
on a rootless one (whose root is the caller). It is removed on every way out, Ctrl-C
included; one a killed `gadget` left behind is removed by the next builder build.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from docker.errors import DockerException
from docker.types import Mount
from gadgetsmith.toolchain.build.compile import CompileSteps, Toolchain, compile_steps
from gadgetsmith.toolchain.builder import BuilderOptions
from gadgetsmith.toolchain.builder.engine import Engine, EngineError, remove_container
from gadgetsmith.toolchain.builder.image import LABEL, sdk_digest
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import owned_tempdir, owner_tag


class BuilderContainer:
    """``with BuilderContainer(...) as c: c.run(argv, cwd)``: created and started on entry,
    killed and removed on exit, whatever the exit."""

    def __init__(self, engine: Engine, image: str, read_only: Sequence[Path],
                 writable: Sequence[Path]) -> None:
        self.engine = engine
        self.image = image
        self.mounts = [Mount(str(p), str(p), type="bind", read_only=True) for p in read_only]
        self.mounts += [Mount(str(p), str(p), type="bind", read_only=False) for p in writable]
        self.user = "0:0" if engine.rootless else f"{os.getuid()}:{os.getgid()}"
        self.container: Any = None
        #: known before the container exists, so an interrupted create is found and removed
        self.name = f"gadgetsmith-builder-{os.getpid()}-{secrets.token_hex(4)}"

    def __enter__(self) -> BuilderContainer:
        self.engine.remove_stale_containers()
        try:
            self.container = self.engine.client.containers.create(
                self.image, command=["sleep", "infinity"], name=self.name, user=self.user,
                network_mode="none",
                mounts=self.mounts, labels={f"{LABEL}.owner": owner_tag()}, working_dir="/",
                detach=True)
            self.container.start()
        except BaseException as e:
            self._remove()
            if isinstance(e, DockerException):
                raise EngineError(f"builder container from {self.image}: {_first_line(e)}") from None
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._remove()

    def _remove(self) -> None:
        if self.container is None:
            try:
                self.container = self.engine.client.containers.get(self.name)
            except DockerException:
                return
        remove_container(self.container)
        self.container = None

    def run(self, argv: Sequence[str], cwd: Path | None) -> tuple[int, str]:
        """Exit status and stderr (stdout after it) of ``argv`` run in the container."""
        try:
            code, (out, err) = self.container.exec_run(
                list(argv), user=self.user, workdir=str(cwd or "/"), demux=True)
        except DockerException as e:
            raise EngineError(f"builder container: exec {argv[0]}: {_first_line(e)}") from None
        text = (err or b"").decode(errors="replace") + (out or b"").decode(errors="replace")
        return int(code if code is not None else 1), text


def _first_line(e: DockerException) -> str:
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
    return [f"warning: builder image {image} has the SDK of gadgetsmith "
            f"{labels.get(f'{LABEL}.version', '?')}, not this one's: objects may differ from a host "
            "build ('gadget builder create' makes a current one)"]


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


def compile_in_builder(source: Path, gadget_dir: Path, arches: Sequence[str], outdir: Path,
                       cflags: Sequence[str], options: BuilderOptions) -> tuple[dict[str, Path], list[str]]:
    """``{arch: outdir/<arch>.bpf.o}`` compiled in the builder, and notes for the user."""
    engine = Engine.connect()
    image = engine.ensure_image(options.image, options.pull)
    labels = dict(image.labels or {})
    toolchain, sdk_root = builder_toolchain(labels, options.image)
    gadget_dir, outdir = gadget_dir.resolve(), outdir.resolve()
    # clang writes into a directory of this build only, mounted writable (a killed clang
    # leaves its temporary files there, and the directory goes when the build ends)
    with owned_tempdir(".builder-", outdir) as work, \
            BuilderContainer(engine, options.image, [gadget_dir], [work]) as c:
        jobs: dict[str, tuple[CompileSteps, Path, Path]] = {}
        for a in arches:
            tmp = work / f"{a}.bpf.o"
            jobs[a] = (compile_steps(toolchain, source.resolve(), a, tmp, cflags, gadget_dir,
                                     sdk_root=sdk_root), tmp, outdir / f"{a}.bpf.o")
        pool = ThreadPoolExecutor(max_workers=len(jobs))
        futures: dict[str, Future[Path]] = {a: pool.submit(_one_arch, c, *job) for a, job in jobs.items()}
        try:
            results = {a: f.result() for a, f in futures.items()}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return results, sdk_note(labels, options.image)
