"""What every command shares: the root options' values, the --store and -o/--output options,
and JSON/YAML printing (typer, click and the stdlib only, so any command can import it).

Output: every command that prints a result takes ``-o/--output`` with ig's values
``columns`` (text for people: tables, one-line reports), ``json`` (one line), ``jsonpretty``
(indented) and ``yaml``. The spellings of earlier releases stay as a hidden alias for
scripts: ``--format text|table|json`` (json is the indented form it always printed); see
:func:`add_format_alias`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from click.core import ParameterSource
from gadgetsmith.toolchain.cli.output import Output as Output
from gadgetsmith.toolchain.cli.output import print_json as print_json
from gadgetsmith.toolchain.cli.state import State as State
from gadgetsmith.toolchain.cli.state import state as state
from gadgetsmith.toolchain.cli.state import store_path as store_path

#: the hidden ``--format`` of earlier releases -> the -o value it means
_FORMAT_ALIAS = {"text": Output.columns, "table": Output.columns, "json": Output.jsonpretty}
_ALIAS_KEY = "gadgetsmith.format"


def output_callback(ctx: click.Context, param: click.Parameter, value: Output) -> str:
    """-o's value, or the hidden --format's when -o was not given. (The value's text: typer
    turns what a callback returns into the enum member again.)"""
    alias: Output | None = ctx.meta.get(_ALIAS_KEY)
    if alias is None or param.name is None:
        return value.value
    if ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT:
        raise click.UsageError("give -o/--output only (--format is its old spelling)", ctx)
    return alias.value


def _format_cb(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_ALIAS_KEY] = _FORMAT_ALIAS[value]


def add_format_alias(cmd: click.Command) -> None:
    """Give ``cmd`` the hidden ``--format text|table|json`` of earlier releases if it has
    ``-o/--output`` (it is read first, and -o's callback takes its value)."""
    if any(isinstance(p, click.Option) and "--output" in p.opts and p.callback is not None
           and getattr(p.type, "choices", None) for p in cmd.params):
        cmd.params.append(click.Option(["--format"], type=click.Choice(list(_FORMAT_ALIAS)),
                                       hidden=True, expose_value=False, is_eager=True,
                                       callback=_format_cb))


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
OutputOpt = Annotated[Output, typer.Option(
    "-o", "--output", callback=output_callback,
    help="columns (text for people), json (one line), jsonpretty or yaml.")]
BuildFileOpt = Annotated[
    Path | None, typer.Option("-f", "--file", help="Build file (default DIR/build.yaml).")
]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="Run clang even when the build cache (~/.cache/gadgetsmith/objects) "
    "holds the object of the same inputs.")]

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
