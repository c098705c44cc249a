"""`gadget list`, `tag`, `rm` and `prune`: the images of the local store (`inspect` is in
:mod:`.inspect`)."""

from __future__ import annotations

from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    Output,
    OutputOpt,
    StoreOpt,
    print_json,
    store_path,
)
from gadgetsmith.toolchain.cli.output import human_size
from gadgetsmith.toolchain.cli.plain import list_command
from gadgetsmith.toolchain.cli.runargs import ListArgs
from gadgetsmith.toolchain.oci.store import open_store
from gadgetsmith.toolchain.oci.views import list_images


def complete_image(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of an image argument: the names of the local store's images."""
    root = ctx.find_root()
    try:
        rows = list_images(ctx.params.get("store") or root.params.get("store"))
    except Exception:  # noqa: BLE001 - completion never fails, it offers nothing
        return []
    names = [f"{r['repository']}:{r['tag']}" if r["tag"] else r["reference"] for r in rows
             if r["reference"]]
    return [n for n in names if n.startswith(incomplete)]


def list_(
    fmt: OutputOpt = Output.columns,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Show full digests.")] = False,
    store: StoreOpt = None,
) -> None:
    """List images in the local store.

    Example: gadget list -o json
    """
    list_command(ListArgs(fmt, no_trunc, store))


def tag(
    source: Annotated[str, typer.Argument(help="Existing image reference or digest.",
                                              autocompletion=complete_image)],
    target: Annotated[str, typer.Argument(help="New reference.")],
    force: Annotated[
        bool, typer.Option("--force", help="Move TARGET if it already names another image.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Give an image another name.

    Example: gadget tag trace_open:dev registry.example.com/team/trace_open:v1
    """
    full, digest = open_store(store_path(store)).tag(source, target, force=force)
    typer.echo(f"Tagged {full}@{digest}")


def rm(
    images: Annotated[list[str], typer.Argument(help="Image references or digests.",
                                                   autocompletion=complete_image)],
    store: StoreOpt = None,
) -> None:
    """Remove images (untag; blobs no image uses any more are deleted).

    Example: gadget rm trace_open:dev
    """
    st = open_store(store_path(store))
    for img in images:
        removed, deleted, cosign_tags = st.remove(img)
        typer.echo(f"{'Deleted' if deleted else 'Untagged'}: {removed}")
        for sig in cosign_tags:
            typer.echo(f"Deleted: {sig} (signature of a removed image)")


def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    fmt: OutputOpt = Output.columns,
    store: StoreOpt = None,
) -> None:
    """Remove blobs no image uses and temporary data that killed commands left behind.

    Temporary data is a pull's, import's or build's staging directory in the store, a
    half-written blob, or a build directory in the system's temp directory, whose command
    is no longer running (writers remove them too, when they take the store lock).
    Untagged images stay: remove them with 'gadget rm DIGEST'.

    Example: gadget prune --dry-run
    """
    report = open_store(store_path(store)).prune(dry_run=dry_run)
    if fmt.structured:
        print_json(report.as_dict(), fmt)
        return
    verb = "Would delete" if dry_run else "Deleted"
    for digest, size in report.blobs:
        typer.echo(f"{verb} blob {digest} ({human_size(size)})")
    for path, size in report.temporaries:
        typer.echo(f"{verb} temporary data {path} ({human_size(size)})")
    total = human_size(report.freed)
    typer.echo(f"Would reclaim: {total}" if dry_run else f"Total reclaimed space: {total}")
