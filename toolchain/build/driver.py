"""`gadget build`: compile, package as an OCI image index, store under a tag."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.runtime.wasm.probe import Additions
from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.build.cache import ObjectCache
from gadgetsmith.toolchain.build.compile import Toolchain, check_cflags, compile_arches, find_toolchain
from gadgetsmith.toolchain.build.wasm import WasmBuild, build_wasm, check_toolchain
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.fsutil import owned_tempdir
from gadgetsmith.toolchain.metadata import buildspec
from gadgetsmith.toolchain.metadata.generate import update_file
from gadgetsmith.toolchain.metadata.objinfo import ObjectInfo, analyze
from gadgetsmith.toolchain.metadata.validate import display_path, validate_bytes, wasm_additions
from gadgetsmith.toolchain.metadata.yamldoc import MarkedDoc, YamlSyntaxError, load_marked
from gadgetsmith.toolchain.names import check_names_repository
from gadgetsmith.toolchain.oci.assemble import ArchContent, BuiltImage, build_image, created_timestamp
from gadgetsmith.toolchain.oci.store import Store, open_store

if TYPE_CHECKING:
    from gadgetsmith.toolchain.btfgen.buildstep import BtfgenStep

ALL_ARCHES = ("amd64", "arm64")

#: compiles a gadget somewhere else than here (the container builder): ``(spec, arches,
#: outdir, cflags) -> ({arch: outdir/<arch>.bpf.o}, the WASM module, notes for the user)``
ObjectCompiler = Callable[[buildspec.BuildSpec, Sequence[str], Path, list[str]],
                          tuple[dict[str, Path], WasmBuild | None, list[str]]]


@dataclass
class BuildResult:
    image: BuiltImage
    reference: str | None
    objects: dict[str, Path]
    stored: bool
    moved_from: str | None = None
    #: gadget.yaml diagnostics (warnings; errors abort the build) and --update-metadata result
    metadata_warnings: list[str] = field(default_factory=list)
    metadata_update: list[str] = field(default_factory=list)
    #: --btfgen summary (kernels, sizes, time), see btfgen.buildstep
    btfgen: dict[str, Any] | None = None
    #: the WASM module: language, size, build seconds (None without one)
    wasm: WasmBuild | None = None
    #: gadget.yaml as parsed for the build (None without one)
    metadata: dict[str, Any] | None = None

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
            "metadataWarnings": self.metadata_warnings,
            "metadataUpdate": self.metadata_update,
            **({"btfgen": self.btfgen} if self.btfgen is not None else {}),
            **({"wasm": self.wasm.summary()} if self.wasm is not None else {}),
        }


@dataclass
class Metadata:
    """gadget.yaml: its bytes (the image's config blob, verbatim), the parsed document
    (validation reads the same parse) and its data."""

    raw: bytes | None = None
    doc: MarkedDoc | None = None
    data: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: bytes, path: Path) -> Metadata:
        try:
            doc = load_marked(raw)
        except YamlSyntaxError as e:
            raise UsageError(f"{path}:{e.line}: {e.message}") from None
        data = {} if doc.data is None else doc.data
        if not isinstance(data, dict):
            raise UsageError(f"{path}: gadget metadata must be a YAML mapping (name: ..., ...)")
        return cls(raw, doc, data)

    @classmethod
    def read(cls, path: Path | None) -> Metadata:
        return cls() if path is None else cls.parse(path.read_bytes(), path)


def load_metadata(path: Path | None) -> tuple[bytes | None, dict[str, Any] | None]:
    """Read gadget.yaml bytes (stored verbatim as the config blob) and parse them."""
    md = Metadata.read(path)
    return md.raw, md.data


def _build_reference(tag: str | None) -> str | None:
    if not tag:
        return None
    check_names_repository(tag, "--tag")
    try:
        ref = parse(tag)
    except InvalidReference as e:
        raise UsageError(f"--tag: {e}") from None
    if ref.digest:
        raise UsageError(f"--tag {tag!r}: a build tag cannot contain a digest")
    return str(ref)


def _checked_arches(arches: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(arches))
    for a in out:
        if a not in ALL_ARCHES:
            raise UsageError(f"unknown architecture {a!r}: use one of {', '.join(ALL_ARCHES)}")
    return out


@contextmanager
def _objects_dir(output_dir: Path | str | None, store: Store | None) -> Iterator[Path]:
    """``-o DIR`` (kept), else a temporary directory removed afterwards: inside
    the store when the image is stored (a killed build's objects are found and removed
    there by the next writer or ``gadget prune``), else in the system's temp directory,
    named after this process so the next build removes it if this one is killed."""
    if output_dir is not None:
        outdir = Path(output_dir)
        if not outdir.is_dir():
            raise UsageError(f"--output-dir {outdir}: no such directory (create it first)")
        yield outdir
        return
    if store is not None:
        with store.staging("build") as tmp:
            yield tmp
        return
    with owned_tempdir("gadget-build-") as tmp:
        yield tmp


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
    validate_metadata: bool = True,
    update_metadata: bool = False,
    btfgen: bool = False,
    btfhub_archive: Path | str | None = None,
    btfgen_jobs: int | None = None,
    btfgen_progress: Any = None,
    compiler: ObjectCompiler | None = None,
    no_cache: bool = False,
) -> BuildResult:
    reference = _build_reference(tag)
    arches = _checked_arches(arches)
    spec = buildspec.load(gadget_dir, build_file)
    cflags = check_cflags(spec.cflags, spec.gadget_dir, str(spec.build_file or spec.gadget_dir))
    btfgen_step = _btfgen_step(btfgen, btfhub_archive, arches, spec.ebpf_source is not None)
    # open the store before compiling so a bad --store fails fast
    store = None if no_store else open_store(store_path)
    with ThreadPoolExecutor(max_workers=1) as pool, _objects_dir(output_dir, store) as outdir:
        md_job = pool.submit(Metadata.read, spec.metadata)  # parsed while clang compiles
        objects, wasm_build, notes = _compile_then(md_job, spec, arches, outdir, toolchain, cflags,
                                                   compiler, None if no_cache else ObjectCache.default())
        md = md_job.result()
        wasm = wasm_build.data if wasm_build else None
        obj_info = None
        if objects and (update_metadata or (validate_metadata and md.raw is not None)):
            first = "amd64" if "amd64" in objects else next(iter(objects))
            obj_info = analyze(objects[first].read_bytes(),
                               display_path(spec.ebpf_source) if spec.ebpf_source else "object")
        update_log: list[str] = []
        if update_metadata:
            md, update_log = _update_metadata(spec, obj_info, md)
        warnings: list[str] = notes
        if validate_metadata and md.raw is not None:
            warnings += _check_metadata(spec, md, obj_info, wasm)
        content = {a: ArchContent(ebpf=objects[a].read_bytes() if a in objects else None, wasm=wasm)
                   for a in arches}
        btfgen_summary = None
        if btfgen_step is not None:
            btfgen_summary = btfgen_step.add_layers(content, btfgen_jobs, btfgen_progress)
            warnings += btfgen_summary.pop("warnings", [])
        image = build_image(md.raw, md.data, content, created_timestamp(),
                            ig_builder_version or sdk.IG_VERSION)
        moved = store.add_image(image.blobs, image.index_descriptor, reference) if store else None
        kept = objects if output_dir is not None else {}
    return BuildResult(image, reference, kept, store is not None, moved, warnings, update_log,
                       btfgen_summary, wasm_build, md.data)


def _compile_then(md_job: Future[Metadata], spec: buildspec.BuildSpec, arches: Sequence[str],
                  outdir: Path, toolchain: Toolchain | None, cflags: list[str],
                  compiler: ObjectCompiler | None, cache: ObjectCache | None,
                  ) -> tuple[dict[str, Path], WasmBuild | None, list[str]]:
    """:func:`_compile`, but a gadget.yaml that does not parse (``md_job``) is the error
    reported when both fail, as when it was read before compiling."""
    try:
        return _compile(spec, arches, outdir, toolchain, cflags, compiler, cache)
    except GadgetError:
        md_job.result()
        raise


def _compile(spec: buildspec.BuildSpec, arches: Sequence[str], outdir: Path,
             toolchain: Toolchain | None, cflags: list[str], compiler: ObjectCompiler | None = None,
             cache: ObjectCache | None = None) -> tuple[dict[str, Path], WasmBuild | None, list[str]]:
    """The eBPF objects per arch and the WASM module, built at the same time (here, or by
    ``compiler``); and notes for the user."""
    if compiler is not None:
        return compiler(spec, arches, outdir, cflags)
    origin = str(spec.build_file or spec.gadget_dir)
    if spec.wasm:
        check_toolchain(spec.wasm)
    with ThreadPoolExecutor(max_workers=1) as pool:
        wasm_job = pool.submit(build_wasm, spec.wasm, outdir, origin) if spec.wasm else None
        objects: dict[str, Path] = {}
        if spec.ebpf_source is not None:
            objects = compile_arches(spec.ebpf_source, arches, outdir, toolchain or find_toolchain(),
                                     cflags, cwd=spec.gadget_dir, cache=cache)
        return objects, wasm_job.result() if wasm_job else None, []


def compile_objects(spec: buildspec.BuildSpec, arches: Sequence[str],
                    no_cache: bool = False) -> dict[str, bytes]:
    """The eBPF objects of a gadget directory, compiled for ``arches`` (no image, no store;
    from the build cache unless ``no_cache``): what `gadget validate`, `gadget metadata` and
    `gadget check` look at."""
    if spec.ebpf_source is None:
        raise UsageError(f"{spec.gadget_dir}: the gadget has no eBPF program")
    cflags = check_cflags(spec.cflags, spec.gadget_dir, str(spec.build_file or spec.gadget_dir))
    with owned_tempdir("gadget-compile-") as tmp:
        objs = compile_arches(spec.ebpf_source, list(arches), tmp, find_toolchain(), cflags,
                              cwd=spec.gadget_dir, cache=None if no_cache else ObjectCache.default())
        return {a: p.read_bytes() for a, p in objs.items()}


def compile_and_analyze(spec: buildspec.BuildSpec, arch: str = "amd64",
                        no_cache: bool = False) -> ObjectInfo:
    """The object model of the gadget's program compiled for ``arch``."""
    obj = compile_objects(spec, [arch], no_cache)[arch]
    return analyze(obj, display_path(spec.ebpf_source) if spec.ebpf_source else "object")


def build_for_host(gadget_dir: Path | str, no_cache: bool = False) -> tuple[bytes, dict[str, Any]]:
    """The eBPF object for this machine's architecture and the parsed gadget.yaml of a
    gadget directory, built without the store: what `gadget run DIR` and `gadget test`
    load. Build errors (compiler, gadget.yaml that does not match) raise as in build()."""
    data, metadata, _wasm = build_for_host_with_wasm(gadget_dir, no_cache)
    return data, metadata


def build_for_host_with_wasm(gadget_dir: Path | str, no_cache: bool = False,
                             ) -> tuple[bytes, dict[str, Any], bytes | None]:
    """:func:`build_for_host`, and the gadget's WASM module (None without one)."""
    arch = sdk.host_arch()
    with owned_tempdir("gadget-run-") as tmp:
        res = build(gadget_dir, arches=[arch], output_dir=tmp, no_store=True, no_cache=no_cache)
        data = res.objects[arch].read_bytes()
    wasm = res.wasm.data if res.wasm is not None else None
    return data, res.metadata or {}, wasm


def wasm_additions_of(spec: buildspec.BuildSpec, obj: ObjectInfo | None) -> Additions:
    """Build the gadget's WASM module (as `gadget build` does) and learn what it adds to
    ``obj``'s data sources; a module that does not build is an Additions with the error
    (validation warns about it), not a failure."""
    assert spec.wasm is not None
    with owned_tempdir("gadget-validate-wasm-") as tmp:
        try:
            built = build_wasm(spec.wasm, tmp, str(spec.build_file or spec.gadget_dir))
        except GadgetError as e:
            return Additions(error=f"the WASM module was not built: {e.message}")
    return wasm_additions(built.data, obj, Metadata.read(spec.metadata).data)


def _update_metadata(spec: buildspec.BuildSpec, obj_info: ObjectInfo | None,
                     md: Metadata) -> tuple[Metadata, list[str]]:
    """--update-metadata: create or merge gadget.yaml from the object.

    Returns the file afterwards: what was written, or (unchanged file) what was loaded
    before the update, without reading the file again.
    """
    if obj_info is None:
        raise UsageError(f"{spec.gadget_dir}: --update-metadata needs an eBPF program")
    path = spec.metadata or spec.gadget_dir / buildspec.DEFAULT_METADATA
    res = update_file(path, obj_info, spec.gadget_dir.name)
    log = [f"added {a}" for a in res.added] + [f"back in the object: {b}" for b in res.back]
    log += [f"not in the object any more (kept, marked): {g}" for g in res.gone]
    if res.changed or md.raw is None:
        md = Metadata.parse(res.text.encode() if res.changed else path.read_bytes(), path)
    return md, log


def _check_metadata(spec: buildspec.BuildSpec, md: Metadata, obj_info: ObjectInfo | None,
                    wasm: bytes | None) -> list[str]:
    """Validate gadget.yaml (schema + object, and what the WASM module adds); errors abort
    the build, warnings are returned."""
    assert md.raw is not None
    label = display_path(spec.metadata) if spec.metadata else "gadget.yaml"
    obj_label = display_path(spec.ebpf_source) if spec.ebpf_source else "object"
    additions = (wasm_additions(wasm, obj_info, md.data)
                 if wasm is not None and obj_info is not None else None)
    report = validate_bytes(md.raw, label, obj_info, obj_label, has_wasm=spec.wasm is not None,
                            doc=md.doc, wasm=additions)
    if report.errors:
        raise UsageError(
            f"{label}: metadata does not match the gadget ({report.summary()}): fix it, run "
            "with --update-metadata, or skip the check with --no-validate-metadata",
            detail="\n".join(d.format() for d in report.diagnostics),
        )
    return [d.format() for d in report.warnings]


def _btfgen_step(btfgen: bool, archive_dir: Path | str | None, arches: Sequence[str],
                 has_ebpf: bool) -> BtfgenStep | None:
    """--btfgen: the archive's kernels per architecture, found before anything compiles."""
    if not btfgen:
        if archive_dir is not None:
            raise UsageError("--btfhub-archive is used only with --btfgen: add --btfgen")
        return None
    if archive_dir is None:
        raise UsageError("--btfgen needs --btfhub-archive DIR (a btfhub-archive checkout, or "
                         "a folder made by 'gadget btf import')")
    if not has_ebpf:
        raise UsageError("--btfgen needs an eBPF program: this gadget has none")
    # btfgen (tar, lzma, bpftool runs) is imported only for --btfgen builds
    from gadgetsmith.toolchain.btfgen.buildstep import BtfgenStep

    return BtfgenStep(archive_dir, arches)
