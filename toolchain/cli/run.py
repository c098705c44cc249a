"""`gadget run`: load a gadget into this kernel and print its events.

Options -> the source (toolchain/run.py) -> ``Gadget`` -> ``Gadget.run`` with a printer
per data source; the loops and the stages are the runtime's.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.runtime.containers.collection import ContainerSelector
from gadgetsmith.runtime.errors import (
    FilterError,
    ParamError,
    RuntimeGadgetError,
    SelectorError,
    SortError,
)
from gadgetsmith.runtime.gadget import Gadget
from gadgetsmith.runtime.pipeline.output import Output
from gadgetsmith.runtime.pipeline.source import GadgetSource
from gadgetsmith.toolchain.cli import options as opt
from gadgetsmith.toolchain.cli.common import Output as OutputFormat
from gadgetsmith.toolchain.cli.common import state, store_path
from gadgetsmith.toolchain.cli.images import complete_image
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.run import resolve_source

Image = Annotated[str, typer.Argument(
    help="Image reference, a gadget source directory or a .o file.", autocompletion=complete_image)]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value (repeatable).")]
Filter = Annotated[str | None, typer.Option("--filter", "-F", help="e.g. 'proc.comm==cat,error!=0'.")]
OutputMode = Annotated[OutputFormat, typer.Option(
    "-o", "--output", help="columns (text for people), json (one event a line), jsonpretty or yaml.")]
Fields = Annotated[str | None, typer.Option(
    "--fields", help="Comma-separated columns to show (per data source: 'ds1:a,b;ds2:c').")]
Sort = Annotated[str | None, typer.Option("--sort", help="Sort snapshots/top: f1,-f2.")]
def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:  # (also NaN)
        raise typer.BadParameter(f"{value:g} is not a number of seconds above 0")
    return value


Timeout = Annotated[float | None, typer.Option(
    "--timeout", callback=_positive, help="Stop after this many seconds.")]
Count = Annotated[int | None, typer.Option("--count", min=1, help="Stop after N events.")]
Interval = Annotated[float, typer.Option(
    "--map-fetch-interval", callback=_positive, help="Seconds between top refreshes.")]
Host = Annotated[bool, typer.Option("--host", help="Show host and container events (no container filter).")]
Store = Annotated[Path | None, typer.Option("--store", help="Local OCI store.")]
NoVerify = Annotated[bool, typer.Option(
    "--no-verify", help="Skip the signature check the policy asks for (warns loudly).")]
PolicyFile = Annotated[Path | None, typer.Option(
    "--policy", help="Policy file (allowlist, required signing keys).")]


def run(ctx: typer.Context, image: Image, param: Params = None, filter_: Filter = None,
        output: OutputMode = OutputFormat.columns, fields: Fields = None, sort: Sort = None,
        timeout: Timeout = None, count: Count = None, interval: Interval = 1.0, host: Host = False,
        containername: opt.ContainerName = None, runtimes: opt.Runtimes = None,
        k8s_namespace: opt.K8sNamespace = None, k8s_podname: opt.K8sPodName = None,
        k8s_containername: opt.K8sContainerName = None, k8s_selector: opt.K8sSelector = None,
        store: Store = None, no_verify: NoVerify = False, policy: PolicyFile = None) -> None:
    """Run a gadget here: load, attach, decode and print its events.

    The gadget's params are options too, after the image, as ig takes them: --failed
    (a bool param: true), --failed=false, --comm cat (the same as -p failed=true -p comm=cat;
    'gadget inspect IMAGE' lists them).

    Example: gadget run trace_open:dev --host --failed --filter 'proc.comm==cat' -o json --timeout 5
    """
    if image.startswith("-"):
        raise UsageError(f"{image}: the image comes first, then the gadget's params "
                         f"(gadget run IMAGE {image} ...)")
    flags = _flag_params(ctx.args)
    params: dict[str, str | None] = {**_params(param), **flags}
    selector = opt.container_selector(containername, k8s_namespace, k8s_podname, k8s_containername,
                                      k8s_selector, runtimes)
    g = _gadget(resolve_source(image, store_path(store), policy, no_verify), params, filter_, sort,
                host, selector, set(flags))
    try:
        with _stop_on_signals(g), g:
            try:
                out = Output(output.value, g.datasources, fields, on_warning=_warn,
                             metadata=g.metadata)
            except ValueError as e:
                raise UsageError(str(e)) from None
            out.start()
            with contextlib.suppress(KeyboardInterrupt):
                g.run(out, timeout=timeout, count=count, interval=interval, on_idle=out.flush)
    except RuntimeGadgetError as e:
        raise _cli_error(e) from None
    finally:
        if g.lost_samples:
            typer.echo(f"warning: {g.lost_samples} records lost in total", err=True)


def _params(param: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for p in param or []:
        if "=" not in p:
            raise UsageError(f"--param {p!r}: expected key=value")
        k, v = p.split("=", 1)
        params[k.strip()] = v
    return params


def _flag_params(args: list[str]) -> dict[str, str | None]:
    """The params given as options (the arguments click did not know): ``--key=value``;
    ``--key value``; ``--key`` alone (followed by another option or by nothing) is None,
    which the params stage makes ``true`` for a bool param, as ig's bool flags are."""
    out: dict[str, str | None] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or arg == "--":
            raise UsageError(f"unexpected argument {arg!r}: gadget run takes one image; a param "
                             "is --key value, --key=value or -p key=value")
        key, eq, value = arg[2:].partition("=")
        out[key] = value if eq else rest.pop(0) if rest and _is_value(rest[0]) else None
    return out


def _is_value(arg: str) -> bool:
    """Is ``arg`` the value of the param option before it (not an option itself)?"""
    return not arg.startswith("-") or arg[1:2].isdigit()


def _gadget(source: GadgetSource, params: dict[str, str | None], filter_: str | None, sort: str | None,
            host: bool, selector: ContainerSelector, flags: set[str]) -> Gadget:
    """The gadget loaded and attached, with this host's container runtimes (events of
    containers get their fields even with --host). ``flags``: the params given as options."""
    try:
        return Gadget(source, params=params, filter=filter_, sort=sort, host=host,
                      selector=selector, containers=True, on_lost=_lost, on_warning=_warn,
                      on_debug=_debug if state.debug else None)
    except ParamError as e:
        raise UsageError(_flag_error(str(e), flags, source.name)) from None
    except RuntimeGadgetError as e:
        raise _cli_error(e) from None


def _flag_error(text: str, flags: set[str], name: str) -> str:
    """A param error in the words of the option the user gave (``--pid=-1``, not
    ``--param pid=-1``); an unknown flag is an unknown option of gadget run."""
    for key in flags:
        if text.startswith(f"unknown param {key!r}"):
            known = text.partition("this gadget's params are ")[2]
            return (f"no such option: --{key} (not an option of gadget run, see 'gadget run "
                    f"--help', nor a param of {name}" + (f": --{known.replace(', ', ', --')}"
                                                         if known else "") + ")")
        if text.startswith(f"--param {key}"):
            return "--" + text.removeprefix("--param ")
    return text


#: runtime errors that mean the command line asked for something impossible (exit 2)
_USAGE = (SelectorError, FilterError, SortError, ParamError)


def _cli_error(e: RuntimeGadgetError) -> GadgetError:
    return UsageError(str(e)) if isinstance(e, _USAGE) else GadgetError(str(e))


@contextlib.contextmanager
def _stop_on_signals(g: Gadget) -> Iterator[None]:
    """Ctrl-C / SIGTERM end the run like --timeout does: the loops see g.stopped, then
    links, readers and maps are closed in order (no exception inside libbpf callbacks)."""
    previous = {sig: signal.signal(sig, lambda *_: g.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _lost(n: int, ds: str) -> None:
    typer.echo(f"warning: {n} records lost by {ds} (the reader fell behind the kernel)", err=True)


def _warn(text: str) -> None:
    typer.echo(f"warning: {text}", err=True)


def _debug(text: str) -> None:
    typer.echo(f"debug: {text}", err=True)
