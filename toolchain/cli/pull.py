"""`gadget pull`: an image with all architectures (and its signature tags) into the store,
checked against the policy's keys before anything is stored."""

from __future__ import annotations

from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    NoVerifyOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
)
from gadgetsmith.toolchain.cli.plainregistry import pull_command
from gadgetsmith.toolchain.cli.runargs import PullArgs


def pull(
    image: Annotated[str, typer.Argument(help="Reference to pull (host/repo:tag or @digest).")],
    no_signature: Annotated[
        bool, typer.Option("--no-signature", help="Do not fetch the sha256-<hex>.sig tags.")
    ] = False,
    no_verify: NoVerifyOpt = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: StoreDirOpt = None,
) -> None:
    """Pull an image with all architectures (and its cosign signature tags) into the store.

    Example: gadget pull registry.corp:5000/observability/trace_open:v1
    """
    pull_command(PullArgs(image, no_signature, no_verify, authfile, list(insecure_registries or []),
                          ca_file, policy, fmt, store))
