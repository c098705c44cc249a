"""`gadget build`: compile a gadget and store it as an OCI image index."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import click
import typer
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain import sdk
from gadgetsmith.toolchain.build.driver import ALL_ARCHES, ObjectCompiler
from gadgetsmith.toolchain.build.driver import build as build_gadget
from gadgetsmith.toolchain.builder import DEFAULT_IMAGE, PULL_POLICIES, BuilderOptions, PullPolicy
from gadgetsmith.toolchain.cli.common import (
    BuildFileOpt,
    NoCacheOpt,
    Output,
    StoreOpt,
    output_callback,
    store_path,
)
from gadgetsmith.toolchain.cli.output import KernelProgress
from gadgetsmith.toolchain.cli.plainbuild import report
from gadgetsmith.toolchain.errors import UsageError

DirectoryArg = Annotated[Path, typer.Argument(help="Gadget directory (program.bpf.c, gadget.yaml).")]
TagOpt = Annotated[str | None, typer.Option("-t", "--tag", help="Image reference to tag the result with.")]
ArchOpt = Annotated[
    list[str] | None,
    typer.Option("--arch", help="Build only this architecture (amd64, arm64); repeatable."),
]
ObjectsDirOpt = Annotated[
    Path | None, typer.Option("--output-dir", help="Keep <arch>.bpf.o objects in this dir.")
]


class _OutputChoice(click.Choice):  # type: ignore[type-arg]
    """-o's values; a directory there (what -o meant for build before) gets the new spelling."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not one of {', '.join(self.choices)}: -o/--output is the "
                      "output format; keep the objects with --output-dir DIR", param, ctx)


BuildOutputOpt = Annotated[Output, typer.Option(
    "-o", "--output", callback=output_callback, click_type=_OutputChoice([o.value for o in Output]),
    help="columns (text for people), json (one line), jsonpretty or yaml.")]
NoStoreOpt = Annotated[
    bool, typer.Option("--no-store", help="Build and package without storing the image.")
]
IgVersionOpt = Annotated[
    str | None,
    typer.Option("--ig-version",
                 help="The ig release written to io.inspektor-gadget.builder.version "
                      f"(default: {sdk.IG_VERSION}, the release the SDK follows)."),
]
UpdateMetadataOpt = Annotated[
    bool,
    typer.Option("--update-metadata",
                 help="Create or refresh gadget.yaml from the object (keeps what you wrote)."),
]
ValidateMetadataOpt = Annotated[
    bool,
    typer.Option("--validate-metadata/--no-validate-metadata",
                 help="Check gadget.yaml against the schema and the object."),
]
BtfgenOpt = Annotated[
    bool,
    typer.Option("--btfgen",
                 help="Add a btfgen layer: the gadget's BTF minimized for every kernel of "
                      "--btfhub-archive, so it loads on kernels without BTF."),
]
BtfhubArchiveOpt = Annotated[
    Path | None,
    typer.Option("--btfhub-archive",
                 help="Kernel BTF archive in btfhub's layout (ID/VERSION_ID/ARCH/RELEASE.btf"
                      "[.tar.xz]): a btfhub-archive checkout or 'gadget btf import' output."),
]

BuilderOpt = Annotated[bool, typer.Option(
    "--builder", help=f"Compile in the builder container (default image {DEFAULT_IMAGE}, made by "
    "'gadget builder create'; engine: DOCKER_HOST, Docker's or podman's socket).")]
BuilderImageOpt = Annotated[str | None, typer.Option(
    "--builder-image", help="Compile in this builder image (implies --builder).", show_default=False)]
BuilderPullOpt = Annotated[str | None, typer.Option(
    "--builder-image-pull", click_type=click.Choice(list(PULL_POLICIES)),
    help="When the engine pulls the builder image: always, missing (the default), never "
    "(implies --builder).", show_default=False)]
LocalOpt = Annotated[bool, typer.Option(
    "--local", help="Compile with this host's clang (the default; refuses the --builder options).")]


def builder_compiler(builder: bool, image: str | None, pull: str | None,
                     local: bool) -> ObjectCompiler | None:
    """What --builder, --builder-image, --builder-image-pull and --local ask for: None to
    compile here, else the builder's compiler."""
    wanted = builder or image is not None or pull is not None
    if local and wanted:
        raise UsageError("--local compiles with this host's clang: drop --builder, --builder-image "
                         "and --builder-image-pull, or drop --local")
    if not wanted:
        return None
    if image is not None:
        try:
            parse(image)
        except InvalidReference as e:
            raise UsageError(f"--builder-image {image!r}: {e}") from None
    policy: PullPolicy = "missing"
    for p in PULL_POLICIES:
        if p == pull:
            policy = p
    options = BuilderOptions(image=image or DEFAULT_IMAGE, pull=policy)
    # the docker SDK is imported only by builds that use the builder
    from gadgetsmith.toolchain.builder.container import compile_in_builder

    return partial(compile_in_builder, options=options)


def build(
    directory: DirectoryArg,
    tag: TagOpt = None,
    arch: ArchOpt = None,
    output_dir: ObjectsDirOpt = None,
    file: BuildFileOpt = None,
    no_store: NoStoreOpt = False,
    ig_version: IgVersionOpt = None,
    update_metadata: UpdateMetadataOpt = False,
    validate_metadata: ValidateMetadataOpt = True,
    btfgen: BtfgenOpt = False,
    btfhub_archive: BtfhubArchiveOpt = None,
    fmt: BuildOutputOpt = Output.columns,
    store: StoreOpt = None,
    builder: BuilderOpt = False,
    builder_image: BuilderImageOpt = None,
    builder_image_pull: BuilderPullOpt = None,
    local: LocalOpt = False,
    no_cache: NoCacheOpt = False,
) -> None:
    """Compile a gadget for amd64 and arm64 and store it as an OCI image index.

    gadget.yaml is validated first (see 'gadget validate'); errors stop the build.

    Example: gadget build sample-gadgets/trace_open -t trace_open:dev --arch amd64

    Example: gadget build my_gadget --update-metadata

    Example: gadget build my_gadget --btfgen --btfhub-archive ~/btfhub-archive

    Example: gadget build my_gadget --builder
    """
    progress = None
    if btfgen and fmt is Output.columns and sys.stderr.isatty():
        progress = KernelProgress("btfgen")
    try:
        result = build_gadget(
            directory,
            tag=tag, arches=arch or ALL_ARCHES, output_dir=output_dir,
            store_path=store_path(store), no_store=no_store, build_file=file,
            ig_builder_version=ig_version,
            validate_metadata=validate_metadata, update_metadata=update_metadata,
            btfgen=btfgen, btfhub_archive=btfhub_archive, btfgen_progress=progress,
            compiler=builder_compiler(builder, builder_image, builder_image_pull, local),
            no_cache=no_cache,
        )
    finally:
        if progress is not None:
            progress.close()
    report(result, fmt)
