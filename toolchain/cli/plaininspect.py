"""The work of `gadget inspect`, without typer or click (see cli/plain.py); a module of its
own because it imports the object model, which `gadget list` does not need."""

from __future__ import annotations

from gadgetsmith.toolchain.cli.output import print_inspect, print_json
from gadgetsmith.toolchain.cli.runargs import InspectArgs
from gadgetsmith.toolchain.cli.state import store_path
from gadgetsmith.toolchain.oci.inspect import inspect_image


def inspect_command(a: InspectArgs) -> None:
    """`gadget inspect IMAGE`: index, per-arch manifests, layers, data sources and params."""
    info = inspect_image(store_path(a.store), a.image)
    if a.fmt.structured:
        print_json(info, a.fmt)
        return
    print_inspect(info)
