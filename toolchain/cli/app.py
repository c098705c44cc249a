"""The `gadget` root: its options, the lazy command group, and the entry point.

Commands are rows of :data:`.commands.COMMANDS` (name -> ``module:function``). The group
imports a command's module only when that command runs, and ``gadget --help`` lists the
commands from the table, so start-up costs typer plus the one command's own imports.
typer turns a command function into a click command (signature, annotations, parameter
types) when it is looked up, so that cost too is paid for the one command that runs.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from gettext import gettext as _
from typing import Annotated

import click
import typer
import typer.core
import typer.main
from click.exceptions import ClickException
from click.exceptions import UsageError as ClickUsageError
from click.shell_completion import CompletionItem, shell_complete
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.toolchain import __version__
from gadgetsmith.toolchain.cli.commands import BY_NAME, COMMANDS, COMPLETE_VAR, Command
from gadgetsmith.toolchain.cli.common import StoreOpt, add_format_alias, state
from gadgetsmith.toolchain.errors import GadgetError
from typer.models import CommandInfo

try:
    from click.exceptions import NoArgsIsHelpError
except ImportError:  # click < 8.2 prints the help itself and exits 0
    NoArgsIsHelpError = ()  # type: ignore[assignment,misc]

# Plain click help everywhere: typer's rich help renderer imports markdown-it (~130 ms per
# --help) and escapes "[required]" as "\\[required]" when markup is off.
typer.core.HAS_RICH = False


class LazyGroup(typer.core.TyperGroup):
    """The root group: commands come from the table, each built the first time it is named."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [c.name for c in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in BY_NAME:
            cmd = self.commands[cmd_name] = load_command(BY_NAME[cmd_name])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, with the help lines of the table (no command is imported)."""
        shown = [c for c in COMMANDS if not c.hidden]
        limit = formatter.width - 6 - max(len(c.name) for c in shown)
        rows = [(c.name, click.Command(c.name, help=c.help).get_short_help_str(limit)) for c in shown]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from the table (click's own would import every command module)."""
        names = [CompletionItem(c.name, help=c.help) for c in COMMANDS
                 if not c.hidden and c.name.startswith(incomplete)]
        return names + click.Command.shell_complete(self, ctx, incomplete)


app = typer.Typer(
    name="gadget",
    cls=LazyGroup,
    help="Build, inspect and manage eBPF gadgets (Inspektor Gadget compatible OCI images).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True}


def load_command(entry: Command) -> click.Command:
    """Import ``entry``'s module and build its click command (or group)."""
    module, _, attr = entry.target.partition(":")
    obj = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    if isinstance(obj, typer.Typer):
        group = typer.main.get_group(obj)
        group.name = entry.name
        for sub in group.commands.values():
            add_format_alias(sub)
        return group
    cmd = typer.main.get_command_from_info(
        CommandInfo(name=entry.name, callback=obj, hidden=entry.hidden,
                    context_settings=_EXTRA if entry.extra_options else None),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )
    add_format_alias(cmd)
    return cmd


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"gadget {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version."),
    ] = False,
    store: StoreOpt = None,
    debug: Annotated[
        bool, typer.Option("--debug",
                           help="Show tracebacks on errors, and where uprobes and USDT probes attach.")
    ] = False,
) -> None:
    """gadget: the gadgetsmith toolchain.

    Example: gadget build sample-gadgets/trace_open -t trace_open:dev
    """
    state.store = store
    state.debug = debug or state.debug


# ---------------------------------------------------------------------------- entry
def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GADGETSMITH_DEBUG", "") not in ("", "0")


#: what a command may end with; anything else is a bug, shown with its traceback under --debug
_EXPECTED = (ClickException, typer.Abort, GadgetError, KeyboardInterrupt, BrokenPipeError)
# (runtime errors and OSErrors are printed as one line too, but show their traceback
# under --debug: where they come from is what --debug is for)


def _exit_code(e: BaseException) -> int:
    """The exit code for an exception out of a command, after printing its one line."""
    if isinstance(e, NoArgsIsHelpError):  # `gadget`, `gadget metadata`: the help, as --help
        typer.echo(e.ctx.get_help())
        return 0
    if isinstance(e, ClickUsageError):
        cmd = e.ctx.command_path if e.ctx else "gadget"
        typer.echo(f"error: {e.format_message()} (see '{cmd} --help')", err=True)
        return 2
    if isinstance(e, ClickException):
        typer.echo(f"error: {e.format_message()}", err=True)
        return e.exit_code
    if isinstance(e, typer.Abort):
        typer.echo("error: aborted", err=True)
        return 130
    if isinstance(e, GadgetError):
        if state.debug:
            traceback.print_exc()
        if e.detail:
            typer.echo(e.detail, err=True)
        typer.echo(f"error: {e.message}", err=True)
        return e.exit_code
    if isinstance(e, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return 130
    if isinstance(e, BrokenPipeError):
        return 1
    if isinstance(e, RuntimeGadgetError):  # the runtime's errors are written for users too
        typer.echo(f"error: {e}", err=True)
        return 1
    if isinstance(e, OSError) and e.strerror:  # the system said no: name the file and why
        where = f"{e.filename}: " if e.filename else ""
        typer.echo(f"error: {where}{e.strerror}", err=True)
        return 1
    typer.echo(f"error: unexpected {type(e).__name__}: {e} (run with --debug for a traceback)",
               err=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:  # a completion script asks for candidates (see `gadget completion`)
        return shell_complete(typer.main.get_command(app), {}, "gadget", COMPLETE_VAR, instruction)
    argv = list(sys.argv[1:] if argv is None else argv)
    state.debug = _debug_requested(argv)
    try:
        rv = app(args=argv, prog_name="gadget", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer turns a KeyboardInterrupt into a silent Exit(130)
            typer.echo("error: interrupted", err=True)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line unless --debug
        code = report_failure(e)
    sys.stdout.flush()
    return code


def report_failure(e: BaseException) -> int:
    """The one line (or, under --debug, the traceback of an unexpected error: re-raised)
    for an exception out of a command, and its exit code. The console script's plain
    lines (cli/entry.py) fail through here too."""
    if state.debug and not isinstance(e, _EXPECTED):
        raise e
    return _exit_code(e)


def run() -> None:
    code = main()
    if state.fast_exit:
        # Console-script entry only (main() stays safe to call in-process). Tearing down
        # the ~700 modules a registry command imports costs 40-60 ms of pure-Python
        # finalisation with nothing to show for it: the command has flushed its output,
        # joined its threads, removed its staging files and written the store atomically.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
