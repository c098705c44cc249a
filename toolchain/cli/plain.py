"""The work of `gadget list`, without typer or click: its typer command (cli/images.py)
and the console script's plain lines (cli/entry.py, cli/runargs.py) call it
(`gadget inspect`'s is cli/plaininspect.py: it imports the object model, list does not)."""

from __future__ import annotations

from gadgetsmith.toolchain.cli.output import print_json, print_table
from gadgetsmith.toolchain.cli.runargs import ListArgs
from gadgetsmith.toolchain.cli.state import store_path
from gadgetsmith.toolchain.oci.views import list_images


def list_command(a: ListArgs) -> None:
    """`gadget list`: the images of the store, as a table or ``fmt``'s JSON/YAML."""
    fmt, no_trunc = a.fmt, a.no_trunc
    rows = list_images(store_path(a.store))
    if fmt.structured:
        print_json(rows, fmt)
        return
    print_table(
        ["REPOSITORY", "TAG", "DIGEST", "CREATED"],
        [
            [
                r["repository"],
                r["tag"],
                r["digest"] if no_trunc else r["digest"].removeprefix("sha256:")[:12],
                r["created_ago"],
            ]
            for r in rows
        ],
    )
