"""`gadget pull`: an image with all architectures (and its signature tags) into the store,
checked against the policy's keys before anything is stored."""

from __future__ import annotations

from functools import partial
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
    state,
    store_path,
    warn,
)
from gadgetsmith.toolchain.cli.registry import ProgressBar, remote_options, report_transfer
from gadgetsmith.toolchain.registry.api import pull_image
from gadgetsmith.toolchain.signing.enforce import pull_check


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
    opts = remote_options(authfile, insecure_registries, ca_file, policy)
    verifier = partial(pull_check, no_verify=no_verify, warn=warn)
    with ProgressBar(f"pull {image}", fmt is Output.columns) as bar:
        stats = pull_image(image, store_path=store_path(store), options=opts, progress=bar,
                           with_signature=not no_signature, verifier=verifier)
    report_transfer("Pulled", stats, fmt)
    state.fast_exit = True
