"""`gadget push` and `gadget copy`, and what every registry command shares (the options'
RemoteOptions, the progress bar, the transfer report).

push/pull/copy set ``state.fast_exit`` once they have reported success, so the console
entry point ends the process without interpreter finalisation (see ``app.run``): by then
every transfer thread is joined, staging files are gone and the store was written
atomically under its lock, so there is nothing left to clean up.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    StoreDirOpt,
    print_json,
    state,
    store_path,
    warn,
)
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.registry.api import (
    RemoteOptions,
    SignatureSelector,
    copy_image,
    push_image,
)
from gadgetsmith.toolchain.registry.transfer import Progress, SignatureView, Stats


def remote_options(authfile: Path | None, insecure: list[str] | None, ca_file: Path | None,
                   policy: Path | None) -> RemoteOptions:
    """The RemoteOptions of the command-line options every registry command takes."""
    return RemoteOptions(authfile=authfile, ca_file=ca_file,
                         insecure_registries=list(insecure or []), policy_file=policy)


class ProgressBar:
    """A rich progress bar on stderr when it is a TTY; otherwise silent."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._p: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        outer = self

        class P(Progress):
            def total(self, nbytes: int) -> None:
                if outer._p is not None:
                    outer._p.update(outer._task, total=(outer._p.tasks[0].total or 0) + nbytes)

            def advance(self, nbytes: int) -> None:
                if outer._p is not None:
                    outer._p.advance(outer._task, nbytes)

        if self.enabled:
            from rich import console, progress  # rich is heavy: only on a terminal

            self._p = progress.Progress(
                "[progress.description]{task.description}", progress.BarColumn(),
                progress.DownloadColumn(), progress.TransferSpeedColumn(),
                console=console.Console(stderr=True), transient=True)
            self._p.start()
            self._task = self._p.add_task(self.label, total=0)
        return P()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._p is not None:
            self._p.stop()


def report_transfer(verb: str, stats: Stats, fmt: Output) -> None:
    if fmt.structured:
        print_json(stats.as_dict(), fmt)
        return
    for w in stats.warnings:
        typer.echo(f"warning: {w}", err=True)
    extra = []
    if stats.skipped:
        extra.append(f"{stats.skipped} already there")
    if stats.mounted:
        extra.append(f"{stats.mounted} mounted")
    if len(stats.signatures) == 1:
        extra.append(f"signature {stats.signature}")
    elif stats.signatures:
        extra.append(f"{len(stats.signatures)} signatures: {', '.join(stats.signatures)}")
    note = f" ({', '.join(extra)})" if extra else ""
    pinned = stats.reference if "@" in stats.reference else f"{stats.reference}@{stats.digest}"
    typer.echo(f"{verb} {pinned}: {stats.transferred}/{stats.blobs} blobs, "
               f"{stats.bytes} bytes{note}")


def _signed_only(store: Store, name: str) -> SignatureView:
    """:func:`~gadgetsmith.toolchain.signing.source.signatures_for`, imported once the image
    has a local signature manifest: an unsigned push parses no cosign formats."""

    def view(tag: str, raw: bytes | None) -> tuple[bytes, dict[str, bytes]] | None:
        if raw is None:
            return None
        from gadgetsmith.toolchain.signing.source import signatures_for

        return signatures_for(store, name)(tag, raw)

    return view


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
    opts = remote_options(authfile, insecure_registries, ca_file, policy)
    selector: SignatureSelector = _signed_only
    if sign or key:
        if not (sign and key):
            raise UsageError("--sign needs --key cosign.key (and --key is only used with --sign)")
        if no_signature:
            raise UsageError("--sign and --no-signature contradict each other: drop one")
        # the signer loads cryptography: only for --sign
        from gadgetsmith.toolchain.signing import cli_helpers, source

        prepared = cli_helpers.sign_before_push(image, dest, key, recursive, store_path(store),
                                                opts, warn)
        selector = partial(source.signatures_for, prepared=prepared)
    with ProgressBar(f"push {dest or image}", fmt is Output.columns) as bar:
        stats = push_image(image, dest=dest, store_path=store_path(store), options=opts,
                           progress=bar, with_signature=not no_signature, signatures=selector)
    report_transfer("Pushed", stats, fmt)
    state.fast_exit = True


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
