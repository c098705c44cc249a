"""`gadget inspect`: an image of the local store, its manifests, layers, data sources and
params (imports the object model: not loaded for `gadget list`)."""

from __future__ import annotations

from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, StoreOpt, print_json, store_path
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.cli.output import print_inspect
from gadgetsmith.toolchain.oci.inspect import inspect_image


def inspect(
    image: Annotated[str, typer.Argument(help="Image reference or digest.", autocompletion=complete_image)],
    fmt: OutputOpt = Output.columns,
    store: StoreOpt = None,
) -> None:
    """Show an image: index, per-arch manifests, layers, data sources and params.

    Example: gadget inspect trace_open:dev -o json
    """
    info = inspect_image(store_path(store), image)
    if fmt.structured:
        print_json(info, fmt)
        return
    print_inspect(info)
