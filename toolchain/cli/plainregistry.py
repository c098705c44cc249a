"""The work of `gadget push` and `gadget pull`, and what every registry command shares (the
options' RemoteOptions, the progress bar, the transfer report), without typer or click:
the typer commands (cli/registry.py, cli/pull.py) and the console script's plain lines
(cli/entry.py, cli/runargs.py) call these.

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
from typing import Any

from gadgetsmith.toolchain.cli.output import Output, echo_err, print_json
from gadgetsmith.toolchain.cli.runargs import PullArgs, PushArgs
from gadgetsmith.toolchain.cli.state import state, store_path
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.registry.api import (
    RemoteOptions,
    SignatureSelector,
    pull_image,
    push_image,
)
from gadgetsmith.toolchain.registry.transfer import Progress, SignatureView, Stats
from gadgetsmith.toolchain.signing.enforce import pull_check


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
        echo_err(f"warning: {w}")
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
    print(f"{verb} {pinned}: {stats.transferred}/{stats.blobs} blobs, {stats.bytes} bytes{note}",
          flush=True)


def _signed_only(store: Store, name: str) -> SignatureView:
    """:func:`~gadgetsmith.toolchain.signing.source.signatures_for`, imported once the image
    has a local signature manifest: an unsigned push parses no cosign formats."""

    def view(tag: str, raw: bytes | None) -> tuple[bytes, dict[str, bytes]] | None:
        if raw is None:
            return None
        from gadgetsmith.toolchain.signing.source import signatures_for

        return signatures_for(store, name)(tag, raw)

    return view


def push_command(a: PushArgs) -> None:
    """`gadget push IMAGE [DEST]`: the index, every architecture and the signature tags."""
    opts = remote_options(a.authfile, a.insecure_registries, a.ca_file, a.policy)
    selector: SignatureSelector = _signed_only
    if a.sign or a.key:
        if not (a.sign and a.key):
            raise UsageError("--sign needs --key cosign.key (and --key is only used with --sign)")
        if a.no_signature:
            raise UsageError("--sign and --no-signature contradict each other: drop one")
        # the signer loads cryptography: only for --sign
        from gadgetsmith.toolchain.signing import cli_helpers, source

        prepared = cli_helpers.sign_before_push(a.image, a.dest, a.key, a.recursive,
                                                store_path(a.store), opts, echo_err)
        selector = partial(source.signatures_for, prepared=prepared)
    with ProgressBar(f"push {a.dest or a.image}", a.fmt is Output.columns) as bar:
        stats = push_image(a.image, dest=a.dest, store_path=store_path(a.store), options=opts,
                           progress=bar, with_signature=not a.no_signature, signatures=selector)
    report_transfer("Pushed", stats, a.fmt)
    state.fast_exit = True


def pull_command(a: PullArgs) -> None:
    """`gadget pull IMAGE`: every architecture (and the signature tags) into the store."""
    opts = remote_options(a.authfile, a.insecure_registries, a.ca_file, a.policy)
    verifier = partial(pull_check, no_verify=a.no_verify, warn=echo_err)
    with ProgressBar(f"pull {a.image}", a.fmt is Output.columns) as bar:
        stats = pull_image(a.image, store_path=store_path(a.store), options=opts, progress=bar,
                           with_signature=not a.no_signature, verifier=verifier)
    report_transfer("Pulled", stats, a.fmt)
    state.fast_exit = True
