"""`gadget validate` and `gadget metadata ...`: check and generate gadget.yaml."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.build.driver import compile_and_analyze, wasm_additions_of
from gadgetsmith.toolchain.cli.common import (
    BuildFileOpt,
    NoCacheOpt,
    Output,
    OutputOpt,
    print_json,
    store_path,
)
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.metadata import buildspec
from gadgetsmith.toolchain.metadata.generate import MergeResult, update_file
from gadgetsmith.toolchain.metadata.generate import generate as generate_metadata
from gadgetsmith.toolchain.metadata.objinfo import ObjectInfo
from gadgetsmith.toolchain.metadata.validate import (
    display_path,
    schema_path,
    validate_bytes,
    validate_dir,
    validate_image,
)

metadata_app = typer.Typer(
    name="metadata",
    help="Generate gadget.yaml from a gadget's compiled object, and show its JSON Schema.\n\n"
    "Example: gadget metadata generate sample-gadgets/trace_open > gadget.yaml",
    no_args_is_help=True,
)


ImageStoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Local OCI store directory (for image references).",
                 show_default=False),
]


def validate(
    target: Annotated[str, typer.Argument(help="Gadget directory, gadget.yaml file, or image reference.")],
    fmt: OutputOpt = Output.columns,
    file: BuildFileOpt = None,
    no_object: Annotated[
        bool, typer.Option("--no-object", help="Schema only: do not compile and cross-check.")
    ] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="What ig accepts (no gadget.yaml, null mappings, fields or data "
        "sources the object lacks) is an error too, and warnings fail.")] = False,
    store: ImageStoreOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Check gadget.yaml against the schema and against the compiled object.

    A directory is compiled (amd64; an unchanged one is taken from the build cache) and its
    gadget.yaml cross-checked with the object: data sources, fields, params and their C
    types, tracer and map-iterator maps. An image
    reference is checked with its stored gadget.yaml and amd64 eBPF layer. Problems are
    printed as FILE:LINE:COL: error|warning: message; any error exits 1. What ig accepts
    is only a warning unless --strict.

    Example: gadget validate sample-gadgets/trace_open

    Example: gadget validate trace_open:dev -o json

    Example: gadget validate my_gadget --strict
    """
    if os.path.isdir(target):
        analyze = partial(compile_and_analyze, no_cache=no_cache)
        report = validate_dir(target, file, analyze_object=None if no_object else analyze,
                              probe_wasm=None if no_object else wasm_additions_of, strict=strict)
    elif os.path.isfile(target):
        try:
            data = Path(target).read_bytes()
        except OSError as e:
            raise GadgetError(f"{target}: cannot read ({e.strerror})") from None
        schema = "build" if Path(target).name in ("build.yaml", "build.yml") else "gadget"
        report = validate_bytes(data, display_path(Path(target)), schema_name=schema,
                                strict=strict)
        report.source = target
    else:
        first = target.split("/", 1)[0]
        if target.startswith(("/", "./", "../", "~")) or ("/" in target and os.path.isdir(first)):
            raise NotFoundError(f"{target}: no such gadget directory or file")
        report = validate_image(target, store_path(store), strict)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    if fmt.structured:
        print_json(report.as_dict(), fmt)
        if failed:
            raise typer.Exit(1)
        return
    for d in report.diagnostics:
        typer.echo(d.format())
    what = report.source or report.file
    if failed:
        raise GadgetError(f"{what}: metadata is not valid ({report.summary()})")
    checked = "schema and compiled object" if report.object_checked else "schema"
    typer.echo(f"{what}: OK ({checked}; {report.summary()})")


def _object_for_dir(directory: Path, file: Path | None) -> tuple[buildspec.BuildSpec, ObjectInfo]:
    spec = buildspec.load(directory, file)
    if spec.ebpf_source is None:
        raise UsageError(f"{directory}: no eBPF source to generate metadata from")
    return spec, compile_and_analyze(spec)


@metadata_app.command("generate")
def generate(
    directory: Annotated[Path, typer.Argument(help="Gadget directory.")],
    file: BuildFileOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Gadget name (default: the directory name).")
    ] = None,
) -> None:
    """Print a gadget.yaml for the gadget's compiled object (data sources, fields, params).

    Fields get IG's names and the annotation template of their special type; params get
    their default from .rodata. Placeholders start with 'TODO:'.

    Example: gadget metadata generate sample-gadgets/trace_open > gadget.yaml
    """
    spec, obj = _object_for_dir(directory, file)
    typer.echo(generate_metadata(obj, name or spec.gadget_dir.name), nl=False)


@metadata_app.command("update")
def update(
    directory: Annotated[Path, typer.Argument(help="Gadget directory.")],
    file: BuildFileOpt = None,
) -> None:
    """Create or refresh DIR/gadget.yaml from the compiled object, keeping what you wrote.

    Same as 'gadget build DIR --update-metadata' without building an image: new data
    sources, fields and params are added; entries the object no longer has are kept and
    marked with a '# gadget: not in the compiled object' comment.

    Example: gadget metadata update sample-gadgets/trace_open
    """
    spec, obj = _object_for_dir(directory, file)
    path = spec.metadata or spec.gadget_dir / buildspec.DEFAULT_METADATA
    res = update_file(path, obj, spec.gadget_dir.name)
    _print_update(path, res)


def _print_update(path: Path, res: MergeResult) -> None:
    shown = display_path(path)
    if not res.changed:
        typer.echo(f"{shown}: up to date")
        return
    for a in res.added:
        typer.echo(f"{shown}: added {a}")
    for b in res.back:
        typer.echo(f"{shown}: back in the object: {b}")
    for g in res.gone:
        typer.echo(f"{shown}: not in the object any more (kept, marked): {g}")


@metadata_app.command("schema")
def schema(
    build: Annotated[bool, typer.Option("--build", help="The build.yaml schema.")] = False,
    path: Annotated[bool, typer.Option("--path", help="Print the file's path, not its content.")] = False,
) -> None:
    """Print the JSON Schema of gadget.yaml (or build.yaml) for editors and CI.

    Example: gadget metadata schema > gadget.schema.json   (then, in gadget.yaml:
    # yaml-language-server: $schema=gadget.schema.json)
    """
    p = schema_path("build" if build else "gadget")
    typer.echo(str(p) if path else p.read_text(), nl=path)

