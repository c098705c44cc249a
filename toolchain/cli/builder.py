"""`gadget builder create|push`: the builder image `gadget build --builder` compiles in."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from gadgetsmith.toolchain.builder import DEFAULT_IMAGE
from gadgetsmith.toolchain.builder.engine import Engine, install
from gadgetsmith.toolchain.builder.image import LABEL, make_image
from gadgetsmith.toolchain.builder.push import push_builder
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    print_json,
)
from gadgetsmith.toolchain.cli.registry import remote_options

builder_app = typer.Typer(
    name="builder",
    help="The builder image 'gadget build --builder' compiles in (Debian's clang-19, libbpf, "
    "bpftool and this SDK).\n\nExample: gadget builder create",
    no_args_is_help=True,
)

BuilderTagOpt = Annotated[str, typer.Option("-t", "--tag", help="Name of the builder image.")]
RefreshOpt = Annotated[bool, typer.Option(
    "--refresh", help="Download the Debian packages again instead of using the cached root filesystem.")]


def _log(fmt: Output) -> Callable[[str], None] | None:
    """Progress lines on a terminal; nothing when piped or with -o json."""
    if fmt.structured or not sys.stderr.isatty():
        return None
    return lambda line: typer.echo(line, err=True)


@builder_app.command("create")
def create(tag: BuilderTagOpt = DEFAULT_IMAGE, refresh: RefreshOpt = False,
           fmt: OutputOpt = Output.columns) -> None:
    """Make the builder image from Debian bookworm packages and load it into the container engine.

    The root filesystem (mmdebstrap, a few minutes the first time) is cached in
    ~/.cache/gadgetsmith/builder; the engine is DOCKER_HOST, Docker's or podman's socket.

    Example: gadget builder create

    Example: DOCKER_HOST=unix:///run/podman/podman.sock gadget builder create -t localhost/builder:1
    """
    engine = Engine.connect()
    log = _log(fmt)
    image = make_image(tag, refresh, log)
    loaded = install(engine, image, log)
    versions = {k.removeprefix(f"{LABEL}.package."): v for k, v in image.labels.items()
                if k.startswith(f"{LABEL}.package.")}
    if fmt.structured:
        print_json({"reference": tag, "id": image.id, "loaded": loaded, "engine": engine.url,
                    "labels": image.labels, "packages": versions}, fmt)
        return
    state = "loaded into" if loaded else "already in"
    typer.echo(f"Builder image {tag} ({image.id[:19]}) {state} {engine.url}")
    for name, version in versions.items():
        typer.echo(f"  {name} {version}")


@builder_app.command("push")
def push(dest: Annotated[str, typer.Argument(help="HOST[:PORT]/REPO:TAG to push to.")],
         tag: BuilderTagOpt = DEFAULT_IMAGE, authfile: AuthFileOpt = None,
         insecure_registries: InsecureOpt = None, ca_file: CaFileOpt = None,
         policy: PolicyOpt = None, fmt: OutputOpt = Output.columns) -> None:
    """Push the builder image (as 'gadget builder create' makes it) to a registry.

    Example: gadget builder push registry.corp:5000/tools/gadget-builder:1
    """
    image = make_image(tag, log=_log(fmt))
    digest = push_builder(image, dest, remote_options(authfile, insecure_registries, ca_file, policy))
    if fmt.structured:
        print_json({"reference": dest, "digest": digest, "id": image.id}, fmt)
    else:
        typer.echo(f"Pushed {dest}@{digest}")
