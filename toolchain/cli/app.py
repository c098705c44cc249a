"""The `gadget` command line. Thin: parsing and printing only; logic lives in modules.

Heavy imports (yaml, rich, the store, the compiler driver) happen inside commands so
`gadget --version` and `gadget --help` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from gadgetsmith.toolchain import __version__

# Plain click help everywhere: typer's rich help renderer imports markdown-it (~130 ms per
# --help) and escapes "[required]" as "\\[required]" when markup is off.
typer.core.HAS_RICH = False

app = typer.Typer(
    name="gadget",
    help="Build, inspect and manage eBPF gadgets (Inspektor Gadget compatible OCI images).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    store: Path | None = None
    debug: bool = False
    # set by a command whose work is complete and durable when it returns (see run())
    fast_exit: bool = False


state = _State()


class OutFormat(str, Enum):
    text = "text"
    json = "json"


class ListFormat(str, Enum):
    table = "table"
    json = "json"


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"gadget {__version__}")
        raise typer.Exit()


StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Local OCI store directory (env GADGETSMITH_STORE; default "
        "$XDG_DATA_HOME/gadgetsmith/store).",
        show_default=False,
    ),
]


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


def _store_path(local: Path | None) -> Path | None:
    return local or state.store


def _out(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


# ---------------------------------------------------------------------------- build
@app.command()
def build(
    directory: Annotated[Path, typer.Argument(help="Gadget directory (program.bpf.c, gadget.yaml).")],
    tag: Annotated[
        str | None, typer.Option("-t", "--tag", help="Image reference to tag the result with.")
    ] = None,
    arch: Annotated[
        list[str] | None,
        typer.Option("--arch", help="Build only this architecture (amd64, arm64); repeatable."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Keep <arch>.bpf.o objects in this dir.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="Build file (default DIR/build.yaml).")
    ] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Build and package without storing the image.")
    ] = False,
    ig_version: Annotated[
        str | None,
        typer.Option(
            "--ig-version",
            help="Also set io.inspektor-gadget.builder.version (the ig release you target).",
        ),
    ] = None,
    update_metadata: Annotated[
        bool,
        typer.Option("--update-metadata",
                     help="Create or refresh gadget.yaml from the object (keeps what you wrote)."),
    ] = False,
    validate_metadata: Annotated[
        bool,
        typer.Option("--validate-metadata/--no-validate-metadata",
                     help="Check gadget.yaml against the schema and the object."),
    ] = True,
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output format.")] = OutFormat.text,
    store: StoreOpt = None,
) -> None:
    """Compile a gadget for amd64 and arm64 and store it as an OCI image index.

    gadget.yaml is validated first (see 'gadget validate'); errors stop the build.

    Example: gadget build sample-gadgets/trace_open -t trace_open:dev --arch amd64

    Example: gadget build my_gadget --update-metadata
    """
    from gadgetsmith.toolchain.build.driver import ALL_ARCHES
    from gadgetsmith.toolchain.build.driver import build as do_build

    result = do_build(
        directory,
        tag=tag,
        arches=arch or ALL_ARCHES,
        output_dir=output,
        store_path=_store_path(store),
        no_store=no_store,
        build_file=file,
        ig_builder_version=ig_version,
        validate_metadata=validate_metadata,
        update_metadata=update_metadata,
    )
    for w in result.metadata_warnings:
        typer.echo(w, err=True)
    if fmt is OutFormat.json:
        _out(result.as_dict())
        return
    name = result.reference or ""
    if result.stored:
        typer.echo(f"Successfully built {name}@{result.digest}")
    else:
        typer.echo(f"Successfully built {name}@{result.digest} (not stored)")
    for a, p in result.objects.items():
        typer.echo(f"  {a}: {p}")
    for line in result.metadata_update:
        typer.echo(f"  gadget.yaml: {line}")


# ---------------------------------------------------------------------------- list
@app.command("list")
def list_(
    fmt: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.table,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Show full digests.")] = False,
    store: StoreOpt = None,
) -> None:
    """List images in the local store.

    Example: gadget list --format json
    """
    from gadgetsmith.toolchain.oci.views import list_images

    rows = list_images(_store_path(store))
    if fmt is ListFormat.json:
        _out(rows)
        return
    from gadgetsmith.toolchain.cli.output import print_table

    print_table(
        ["REPOSITORY", "TAG", "DIGEST", "CREATED"],
        [
            [
                r["repository"],
                r["tag"],
                r["digest"] if no_trunc else r["digest"].removeprefix("sha256:")[:12],
                r["created_ago"],
            ]
            for r in rows
        ],
    )


app.command("ls", hidden=True)(list_)


# ---------------------------------------------------------------------------- inspect
@app.command()
def inspect(
    image: Annotated[str, typer.Argument(help="Image reference or digest.")],
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output format.")] = OutFormat.text,
    store: StoreOpt = None,
) -> None:
    """Show an image: index, per-arch manifests, layers, data sources and params.

    Example: gadget inspect trace_open:dev --format json
    """
    from gadgetsmith.toolchain.oci.views import inspect_image

    info = inspect_image(_store_path(store), image)
    if fmt is OutFormat.json:
        _out(info)
        return
    from gadgetsmith.toolchain.cli.output import print_inspect

    print_inspect(info)


# ---------------------------------------------------------------------------- tag
@app.command()
def tag(
    source: Annotated[str, typer.Argument(help="Existing image reference or digest.")],
    target: Annotated[str, typer.Argument(help="New reference.")],
    force: Annotated[
        bool, typer.Option("--force", help="Move TARGET if it already names another image.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Give an image another name.

    Example: gadget tag trace_open:dev registry.example.com/team/trace_open:v1
    """
    from gadgetsmith.toolchain.oci.store import open_store

    full, digest = open_store(_store_path(store)).tag(source, target, force=force)
    typer.echo(f"Tagged {full}@{digest}")


# ---------------------------------------------------------------------------- rm
@app.command("rm")
def rm(
    images: Annotated[list[str], typer.Argument(help="Image references or digests.")],
    store: StoreOpt = None,
) -> None:
    """Remove images (untag; blobs no image uses any more are deleted).

    Example: gadget rm trace_open:dev
    """
    from gadgetsmith.toolchain.oci.store import open_store

    st = open_store(_store_path(store))
    for img in images:
        removed, deleted, cosign_tags = st.remove(img)
        typer.echo(f"{'Deleted' if deleted else 'Untagged'}: {removed}")
        for tag in cosign_tags:
            typer.echo(f"Deleted: {tag} (signature of a removed image)")


app.command("remove", hidden=True)(rm)


# ---------------------------------------------------------------------------- more commands
# Feature areas register their commands from their own modules (validate/metadata, run,
# registry ...). Those modules import only typer and the stdlib at import time.
_COMMAND_MODULES = ("metadata", "run", "registry", "signing", "containers")


def _register_command_modules() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise


_register_command_modules()


# ---------------------------------------------------------------------------- entry
_ROOT_OPTIONS_WITH_VALUE = ("--store",)


def _command_name(info) -> str:
    from typer.main import get_command_name

    if isinstance(info, typer.models.TyperInfo):  # a sub-app added with add_typer
        return info.name or (info.typer_instance.info.name if info.typer_instance else "") or ""
    return info.name or get_command_name(info.callback.__name__)


def _app_for(argv: list[str]) -> typer.Typer:
    """The app to run ``argv``: one holding only the named command when there is one.

    typer turns every registered command into a click command (signature, annotations,
    parameter types) each time it runs, ~30 ms for gadget's 30 commands: more than most
    commands' own work. The root options and callback are kept, so ``gadget --store X
    push ...`` parses the same; ``--help``, no command, or an unknown name get the whole
    app (the help list, click's "No such command").
    """
    it = iter(argv)
    for tok in it:
        if tok in ("-h", "--help", "--version"):  # about the whole app: `gadget --help push`
            return app
        if tok in _ROOT_OPTIONS_WITH_VALUE:
            next(it, None)
        elif not tok.startswith("-"):
            name = tok
            break
    else:
        return app
    cmds = [c for c in app.registered_commands if _command_name(c) == name]
    groups = [g for g in app.registered_groups if _command_name(g) == name]
    if len(cmds) + len(groups) != 1:
        return app
    import copy

    one = copy.copy(app)
    one.registered_commands, one.registered_groups = cmds, groups
    return one


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GADGETSMITH_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    state.debug = _debug_requested(argv)
    from click.exceptions import ClickException, UsageError

    try:
        from click.exceptions import NoArgsIsHelpError
    except ImportError:  # click < 8.2
        NoArgsIsHelpError = ()  # type: ignore[assignment,misc]

    from gadgetsmith.toolchain.errors import GadgetError

    try:
        rv = _app_for(argv)(args=argv, prog_name="gadget", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except NoArgsIsHelpError:
        code = 0  # typer already printed the help
    except UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "gadget"
        typer.echo(f"error: {e.format_message()} (see '{cmd} --help')", err=True)
        code = 2
    except ClickException as e:
        typer.echo(f"error: {e.format_message()}", err=True)
        code = e.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        code = 130
    except GadgetError as e:
        if state.debug:
            import traceback

            traceback.print_exc()
        if e.detail:
            typer.echo(e.detail, err=True)
        typer.echo(f"error: {e.message}", err=True)
        code = e.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        code = 130
    except BrokenPipeError:
        code = 1
    except Exception as e:  # noqa: BLE001 - last-resort: one line unless --debug
        if state.debug:
            raise
        typer.echo(
            f"error: unexpected {type(e).__name__}: {e} (run with --debug for a traceback)",
            err=True,
        )
        code = 1
    sys.stdout.flush()
    return code


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
