"""`gadget build`: compile, package as an OCI image index, store under a tag."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import buildspec
from .compile import Toolchain, check_cflags, compile_arches, find_toolchain
from .errors import UsageError
from .image import ArchContent, BuiltImage, build_image, created_timestamp

ALL_ARCHES = ("amd64", "arm64")


@dataclass
class BuildResult:
    image: BuiltImage
    reference: str | None
    objects: dict[str, Path]
    stored: bool
    moved_from: str | None = None

    @property
    def digest(self) -> str:
        return self.image.digest

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "stored": self.stored,
            "architectures": list(self.image.manifests),
            "objects": {a: str(p) for a, p in self.objects.items()},
        }


def load_metadata(path: Path | None) -> tuple[bytes | None, dict[str, Any] | None]:
    """Read gadget.yaml bytes (stored verbatim as the config blob) and parse them."""
    if path is None:
        return None, None
    import yaml

    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: gadget metadata must be a YAML mapping (name: ..., ...)")
    return raw, data


def build(
    gadget_dir: Path | str,
    tag: str | None = None,
    arches: Sequence[str] = ALL_ARCHES,
    output_dir: Path | str | None = None,
    store_path: Path | str | None = None,
    no_store: bool = False,
    build_file: Path | str | None = None,
    toolchain: Toolchain | None = None,
    ig_builder_version: str | None = None,
) -> BuildResult:
    from gadgetsmith.runtime.reference import ReferenceError, parse

    reference = None
    if tag:
        try:
            ref = parse(tag)
        except ReferenceError as e:
            raise UsageError(f"--tag: {e}") from None
        if ref.digest:
            raise UsageError(f"--tag {tag!r}: a build tag cannot contain a digest")
        reference = str(ref)
    arches = list(dict.fromkeys(arches))
    for a in arches:
        if a not in ALL_ARCHES:
            raise UsageError(f"unknown architecture {a!r}: use one of {', '.join(ALL_ARCHES)}")
    spec = buildspec.load(gadget_dir, build_file)
    origin = str(spec.build_file or spec.gadget_dir)
    cflags = check_cflags(spec.cflags, spec.gadget_dir, origin)
    meta_bytes, meta = load_metadata(spec.metadata)

    # open the store before compiling so a bad --store fails fast
    store = None
    if not no_store:
        from .store import open_store

        store = open_store(store_path)

    tmpdir = None
    if output_dir is not None:
        outdir = Path(output_dir)
        if not outdir.is_dir():
            raise UsageError(f"-o {outdir}: output directory does not exist")
    else:
        tmpdir = tempfile.mkdtemp(prefix="gadget-build-")
        outdir = Path(tmpdir)
    try:
        objects: dict[str, Path] = {}
        if spec.ebpf_source is not None:
            tc = toolchain or find_toolchain()
            objects = compile_arches(spec.ebpf_source, arches, outdir, tc, cflags, cwd=spec.gadget_dir)
        wasm = spec.wasm.read_bytes() if spec.wasm else None
        content = {
            a: ArchContent(ebpf=objects[a].read_bytes() if a in objects else None, wasm=wasm)
            for a in arches
        }
        image = build_image(meta_bytes, meta, content, created_timestamp(), ig_builder_version)
        moved = None
        if store is not None:
            moved = store.add_image(image.blobs, image.index_descriptor, reference)
        return BuildResult(
            image,
            reference,
            objects if output_dir is not None else {},
            store is not None,
            moved,
        )
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
