"""`gadget login/logout/push/pull/copy/export/import/registry-check`: parsing and printing.

push/pull/copy set ``state.fast_exit`` once they have reported success, so the console
entry point ends the process without interpreter finalisation (see ``cli.run``): by then
every transfer thread is joined, staging files are gone and the store was written
atomically under its lock, so there is nothing left to clean up.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.app import _store_path, app, state


class _Fmt(str, Enum):
    text = "text"
    json = "json"


AuthFileOpt = Annotated[
    Path | None,
    typer.Option("--authfile", help="Docker-style auth file (env REGISTRY_AUTH_FILE; default "
                 "$DOCKER_CONFIG/config.json or ~/.docker/config.json).", show_default=False),
]
InsecureOpt = Annotated[
    list[str] | None,
    typer.Option("--insecure-registries", help="host:port[,host:port] reached over plain HTTP "
                 "(no credentials are sent to non-loopback hosts).", show_default=False),
]
CaFileOpt = Annotated[
    Path | None, typer.Option("--ca-file", help="PEM CA bundle to verify the registry's TLS certificate.")
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (env GADGETSMITH_POLICY; default "
                 "/etc/gadgetsmith/policy.yaml if present).", show_default=False),
]
FmtOpt = Annotated[_Fmt, typer.Option("--format", help="Output format.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Local OCI store directory.")]


def _options(authfile, insecure, ca_file, policy):
    from gadgetsmith.toolchain.registry.api import RemoteOptions

    return RemoteOptions(authfile=authfile, ca_file=ca_file,
                         insecure_registries=list(insecure or []), policy_file=policy)


class _Bar:
    """A rich progress bar on stderr when it is a TTY; otherwise silent."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._p = None
        self._task = None

    def __enter__(self):
        from gadgetsmith.toolchain.registry.transfer import Progress

        outer = self

        class P(Progress):
            def total(self, nbytes: int) -> None:
                if outer._p is not None:
                    outer._p.update(outer._task, total=(outer._p.tasks[0].total or 0) + nbytes)

            def advance(self, nbytes: int) -> None:
                if outer._p is not None:
                    outer._p.advance(outer._task, nbytes)

        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, TransferSpeedColumn
            from rich.progress import Progress as RP

            self._p = RP("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                         TransferSpeedColumn(), console=Console(stderr=True), transient=True)
            self._p.start()
            self._task = self._p.add_task(self.label, total=0)
        return P()

    def __exit__(self, *exc) -> None:
        if self._p is not None:
            self._p.stop()


def _report(verb: str, stats, fmt: _Fmt) -> None:
    if fmt is _Fmt.json:
        typer.echo(json.dumps(stats.as_dict(), indent=2))
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
    typer.echo(f"{verb} {stats.reference}@{stats.digest}: {stats.transferred}/{stats.blobs} blobs, "
               f"{stats.bytes} bytes{note}")


@app.command()
def push(
    image: Annotated[str, typer.Argument(help="Local image reference (pushed to that reference).")],
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
    fmt: FmtOpt = _Fmt.text,
    store: StoreOpt = None,
) -> None:
    """Push an image (index, all architectures, and its signature tags) to a registry.

    Example: gadget push registry.corp:5000/observability/trace_open:v1 --sign --key cosign.key
    """
    from gadgetsmith.toolchain.registry.api import push_image

    opts = _options(authfile, insecure_registries, ca_file, policy)
    if sign or key:
        from gadgetsmith.toolchain.errors import UsageError
        from gadgetsmith.toolchain.signing.cli_helpers import sign_before_push

        if not (sign and key):
            raise UsageError("--sign needs --key cosign.key (and --key is only used with --sign)")
        if no_signature:
            raise UsageError("--sign and --no-signature contradict each other: drop one")
        sign_before_push(image, dest, key, recursive, _store_path(store), opts,
                         lambda m: typer.echo(m, err=True))
    with _Bar(f"push {dest or image}", fmt is _Fmt.text) as bar:
        stats = push_image(image, dest=dest, store_path=_store_path(store), options=opts,
                           progress=bar, with_signature=not no_signature)
    _report("Pushed", stats, fmt)
    state.fast_exit = True


@app.command()
def pull(
    image: Annotated[str, typer.Argument(help="Reference to pull (host/repo:tag or @digest).")],
    no_signature: Annotated[
        bool, typer.Option("--no-signature", help="Do not fetch the sha256-<hex>.sig tags.")
    ] = False,
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Skip the signature check the policy asks for (warns loudly)."),
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: FmtOpt = _Fmt.text,
    store: StoreOpt = None,
) -> None:
    """Pull an image with all architectures (and its cosign signature tags) into the store.

    Example: gadget pull registry.corp:5000/observability/trace_open:v1
    """
    from gadgetsmith.toolchain.registry.api import pull_image

    opts = _options(authfile, insecure_registries, ca_file, policy)
    with _Bar(f"pull {image}", fmt is _Fmt.text) as bar:
        stats = pull_image(image, store_path=_store_path(store), options=opts, progress=bar,
                           with_signature=not no_signature, verify=not no_verify,
                           warn=lambda m: typer.echo(m, err=True))
    _report("Pulled", stats, fmt)
    state.fast_exit = True


@app.command()
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
    fmt: FmtOpt = _Fmt.text,
) -> None:
    """Copy an image between registries without the local store (blobs are streamed).

    Example: gadget copy registry.corp:5000/obs/trace_open:v1 127.0.0.1:5000/mirror/trace_open:v1
    """
    from gadgetsmith.toolchain.registry.api import copy_image

    opts = _options(authfile, insecure_registries, ca_file, policy)
    with _Bar(f"copy {source}", fmt is _Fmt.text) as bar:
        stats = copy_image(source, dest, options=opts, progress=bar, with_signature=not no_signature)
    _report("Copied", stats, fmt)
    state.fast_exit = True


@app.command()
def login(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].")],
    username: Annotated[str | None, typer.Option("-u", "--username", help="User name.")] = None,
    password: Annotated[
        str | None, typer.Option("-p", "--password", help="Password (prefer --password-stdin).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password or token from stdin.")
    ] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Store the credentials without trying them.")
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Check credentials against a registry and save them (Docker config format).

    Example: gadget login registry.corp:5000 -u ci --password-stdin < token
    """
    from gadgetsmith.toolchain.errors import UsageError
    from gadgetsmith.toolchain.registry.login import login as do_login

    if password_stdin and password:
        raise UsageError("give either --password or --password-stdin, not both")
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty() or password_stdin:
            raise UsageError("--username is required (e.g. gadget login HOST -u NAME --password-stdin)")
        username = typer.prompt("Username")
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("no password: use --password-stdin")
        password = typer.prompt("Password", hide_input=True)
    where = do_login(registry, username, password,
                     options=_options(authfile, insecure_registries, ca_file, None), verify=not no_verify)
    typer.echo(f"Login Succeeded ({registry}; saved in {where})")


@app.command()
def logout(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].")],
    authfile: AuthFileOpt = None,
) -> None:
    """Remove the saved credentials of a registry.

    Example: gadget logout registry.corp:5000
    """
    from gadgetsmith.toolchain.registry.auth import AuthStore

    st = AuthStore(authfile)
    if st.logout(registry):
        typer.echo(f"Removed login credentials for {registry} from {st.path}")
    else:
        typer.echo(f"Not logged in to {registry} ({st.path})")


@app.command("export")
def export_(
    args: Annotated[list[str], typer.Argument(help="IMAGE... FILE.tar", show_default=False)],
    fmt: FmtOpt = _Fmt.text,
    store: StoreOpt = None,
) -> None:
    """Write images (and their signature tags) to a plain tar of an OCI layout, like ig's.

    Example: gadget export trace_open:v1 snapshot_process:v1 gadgets.tar
    """
    from gadgetsmith.toolchain.errors import UsageError
    from gadgetsmith.toolchain.oci.archive import export_images
    from gadgetsmith.toolchain.oci.store import open_store

    if len(args) < 2:
        raise UsageError("give at least one image and the output file (gadget export IMAGE... FILE)")
    res = export_images(open_store(_store_path(store)), args[:-1], Path(args[-1]))
    if fmt is _Fmt.json:
        typer.echo(json.dumps(res, indent=2))
        return
    typer.echo(f"Exported {len(res['images'])} image(s), {res['blobs']} blobs to {res['file']}")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Tar written by gadget export or ig image export.")],
    no_verify: Annotated[
        bool,
        typer.Option("--no-verify", help="Skip the signature check the policy asks for (warns loudly)."),
    ] = False,
    policy: PolicyOpt = None,
    fmt: FmtOpt = _Fmt.text,
    store: StoreOpt = None,
) -> None:
    """Import the images of an OCI layout tar; all or nothing, checked before anything is stored.

    Example: gadget import gadgets.tar
    """
    from gadgetsmith.toolchain.oci.archive import import_images
    from gadgetsmith.toolchain.oci.store import open_store
    from gadgetsmith.toolchain.policy import load_policy

    pol = load_policy(policy)
    res = import_images(open_store(_store_path(store)), file, policy=pol, verify=not no_verify,
                        warn=lambda m: typer.echo(m, err=True))
    if fmt is _Fmt.json:
        typer.echo(json.dumps(res["images"], indent=2))
        return
    for ref in res["images"]:
        typer.echo(f"Imported {ref}")


@app.command("registry-check")
def registry_check(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].")],
    repo: Annotated[
        str, typer.Option("--repo", help="Scratch repository for the media-type probe.")
    ] = "gadgetsmith/preflight",
    no_write: Annotated[
        bool, typer.Option("--no-write", help="Skip the media-type probe (it pushes a tiny image).")
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    fmt: FmtOpt = _Fmt.text,
) -> None:
    """Check a registry: reachable, accepts gadget media types, OCI 1.1 referrers API or tag fallback.

    Example: gadget registry-check registry.corp:5000 --repo team/preflight
    """
    from gadgetsmith.toolchain.registry.api import check_registry
    from gadgetsmith.toolchain.registry.login import _host

    host = _host(registry)
    rep = check_registry(host, repo, options=_options(authfile, insecure_registries, ca_file, None),
                         write=not no_write)
    if fmt is _Fmt.json:
        typer.echo(json.dumps(rep, indent=2))
    else:
        typer.echo(f"{rep['host']} ({rep['scheme']}, API {rep['apiVersion'] or '?'})")
        for m in rep["messages"]:
            typer.echo(f"  {m}")
    if rep["mediaTypes"] is False:
        raise typer.Exit(1)
