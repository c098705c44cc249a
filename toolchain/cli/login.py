"""`gadget login`, `gadget logout` and `gadget registry-check`: credentials and what a
registry can take."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    print_json,
)
from gadgetsmith.toolchain.cli.registry import remote_options
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.registry.api import check_registry
from gadgetsmith.toolchain.registry.auth import AuthStore
from gadgetsmith.toolchain.registry.login import login as login_registry
from gadgetsmith.toolchain.registry.login import registry_host


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
    where = login_registry(registry, username, password,
                           options=remote_options(authfile, insecure_registries, ca_file, None),
                           verify=not no_verify)
    if no_verify:
        typer.echo(f"Credentials saved for {registry} in {where}, not checked (--no-verify)")
    else:
        typer.echo(f"Login Succeeded ({registry}; saved in {where})")


def logout(
    registry: Annotated[str, typer.Argument(help="Registry host[:port].")],
    authfile: AuthFileOpt = None,
) -> None:
    """Remove the saved credentials of a registry.

    Example: gadget logout registry.corp:5000
    """
    st = AuthStore(authfile)
    if st.logout(registry):
        typer.echo(f"Removed login credentials for {registry} from {st.path}")
    else:
        typer.echo(f"Not logged in to {registry} ({st.path})")


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
    fmt: OutputOpt = Output.columns,
) -> None:
    """Check a registry: reachable, accepts gadget media types, OCI 1.1 referrers API or tag fallback.

    Example: gadget registry-check registry.corp:5000 --repo team/preflight
    """
    host = registry_host(registry)
    rep = check_registry(host, repo, options=remote_options(authfile, insecure_registries, ca_file, None),
                         write=not no_write)
    if fmt.structured:
        print_json(rep, fmt)
    else:
        typer.echo(f"{rep['host']} ({rep['scheme']}, API {rep['apiVersion'] or '?'})")
        for m in rep["messages"]:
            typer.echo(f"  {m}")
    if rep["mediaTypes"] is False:
        raise typer.Exit(1)
