"""`gadget inspect`: an image of the local store, its manifests, layers, data sources and
params (imports the object model: not loaded for `gadget list`)."""

from __future__ import annotations

from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import Output, OutputOpt, StoreOpt
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.cli.plaininspect import inspect_command
from gadgetsmith.toolchain.cli.runargs import InspectArgs


def inspect(
    image: Annotated[str, typer.Argument(help="Image reference or digest.", autocompletion=complete_image)],
    fmt: OutputOpt = Output.columns,
    store: StoreOpt = None,
) -> None:
    """Show an image: index, per-arch manifests, layers, data sources and params.

    Example: gadget inspect trace_open:dev -o json
    """
    inspect_command(InspectArgs(image, fmt, store))
