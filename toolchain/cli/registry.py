"""`gadget push` and `gadget copy`, the typer commands (push's work, and what every
registry command shares, are in cli/plainregistry.py, which a plain push or pull line
reaches without typer: see cli/entry.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
    state,
)
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.cli.plainregistry import ProgressBar, push_command, report_transfer
from gadgetsmith.toolchain.cli.plainregistry import remote_options as remote_options  # (login, sign ...)
from gadgetsmith.toolchain.cli.runargs import PushArgs
from gadgetsmith.toolchain.registry.api import copy_image


def push(
    image: Annotated[str, typer.Argument(help="Local image reference (pushed to that reference).",
                                     autocompletion=complete_image)],
    dest: Annotated[
        str | None, typer.Argument(help="Push to this reference instead.", show_default=False)
    ] = None,
    no_signature: Annotated[
        bool, typer.Option("--no-signature", help="Do not push the local sha256-<hex>.sig tag.")
    ] = False,
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign the image (in the local store) before pushing.")
    ] = False,
    key: Annotated[
        Path | None, typer.Option("--key", help="Private key for --sign (cosign.key).")
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", help="With --sign: also sign each per-arch manifest.")
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: StoreDirOpt = None,
) -> None:
    """Push an image (index, all architectures, and its signature tags) to a registry.

    Example: gadget push registry.corp:5000/observability/trace_open:v1 --sign --key cosign.key
    """
    push_command(PushArgs(image, dest, no_signature, sign, key, recursive, authfile,
                          list(insecure_registries or []), ca_file, policy, fmt, store))


def copy(
    source: Annotated[str, typer.Argument(help="Source reference in a registry.")],
    dest: Annotated[str, typer.Argument(help="Destination reference in a registry.")],
    no_signature: Annotated[
        bool, typer.Option("--no-signature", help="Do not copy the sha256-<hex>.sig tags.")
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
) -> None:
    """Copy an image between registries without the local store (blobs are streamed).

    Example: gadget copy registry.corp:5000/obs/trace_open:v1 127.0.0.1:5000/mirror/trace_open:v1
    """
    opts = remote_options(authfile, insecure_registries, ca_file, policy)
    with ProgressBar(f"copy {source}", fmt is Output.columns) as bar:
        stats = copy_image(source, dest, options=opts, progress=bar, with_signature=not no_signature)
    report_transfer("Copied", stats, fmt)
    state.fast_exit = True
