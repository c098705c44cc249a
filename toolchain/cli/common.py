"""What every command shares: the root options' values, the --store and --format options,
and JSON printing (typer and the stdlib only, so any command can import it)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class State:
    """Values of the root options (``gadget --store S --debug CMD``)."""

    store: Path | None = None
    debug: bool = False
    #: set by a command whose work is complete and durable when it returns (see app.run())
    fast_exit: bool = False


state = State()


def store_path(local: Path | None) -> Path | None:
    """The store a command uses: its own ``--store``, else the root's (else the default)."""
    return local or state.store


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


class OutFormat(str, Enum):
    text = "text"
    json = "json"


class ListFormat(str, Enum):
    table = "table"
    json = "json"


StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Local OCI store directory (env GADGETSMITH_STORE; default "
        "$XDG_DATA_HOME/gadgetsmith/store).",
        show_default=False,
    ),
]
#: the same option as the short help of push/pull/import/export shows it
StoreDirOpt = Annotated[Path | None, typer.Option("--store", help="Local OCI store directory.")]
FormatOpt = Annotated[OutFormat, typer.Option("--format", help="Output format.")]
BuildFileOpt = Annotated[
    Path | None, typer.Option("-f", "--file", help="Build file (default DIR/build.yaml).")
]

# how to reach registries: push/pull/copy/login/registry-check, sign and verify
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
NoVerifyOpt = Annotated[
    bool,
    typer.Option("--no-verify", help="Skip the signature check the policy asks for (warns loudly)."),
]


def warn(msg: str) -> None:
    """A warning line on stderr (``msg`` carries its own ``warning:`` prefix if it needs one)."""
    typer.echo(msg, err=True)
