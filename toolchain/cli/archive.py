"""`gadget export` and `gadget import`: OCI layout tars, like ig's."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    NoVerifyOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
    print_json,
    store_path,
    warn,
)
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.archive import export_images, import_images
from gadgetsmith.toolchain.oci.store import open_store
from gadgetsmith.toolchain.policy import load_policy
from gadgetsmith.toolchain.signing.enforce import check_staged_images


def export_(
    args: Annotated[list[str], typer.Argument(help="IMAGE... FILE.tar", show_default=False)],
    fmt: OutputOpt = Output.columns,
    store: StoreDirOpt = None,
) -> None:
    """Write images (and their signature tags) to a plain tar of an OCI layout, like ig's.

    Example: gadget export trace_open:v1 snapshot_process:v1 gadgets.tar
    """
    if len(args) < 2:
        raise UsageError("give at least one image and the output file (gadget export IMAGE... FILE)")
    res = export_images(open_store(store_path(store)), args[:-1], Path(args[-1]))
    if fmt.structured:
        print_json(res, fmt)
        return
    typer.echo(f"Exported {len(res['images'])} image(s), {res['blobs']} blobs to {res['file']}")


def import_(
    file: Annotated[Path, typer.Argument(help="Tar written by gadget export or ig image export.")],
    no_verify: NoVerifyOpt = False,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: StoreDirOpt = None,
) -> None:
    """Import the images of an OCI layout tar; all or nothing, checked before anything is stored.

    Example: gadget import gadgets.tar
    """
    pol = load_policy(policy)
    check = partial(check_staged_images, pol, no_verify=no_verify, warn=warn)
    res = import_images(open_store(store_path(store)), file, policy=pol, check=check)
    if fmt.structured:
        print_json(res["images"], fmt)
        return
    for ref in res["images"]:
        typer.echo(f"Imported {ref}")
