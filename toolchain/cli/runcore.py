"""`gadget run`'s work, without typer or click: options (:class:`RunArgs`) -> the source
(toolchain/run.py) -> ``Gadget`` -> ``Gadget.run`` with a printer per data source. The
typer command (cli/run.py) and the start-up path that parses run's argv itself
(cli/runargs.py, cli/entry.py) both call :func:`execute`."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

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
from gadgetsmith.toolchain.cli.output import echo_err
from gadgetsmith.toolchain.cli.runargs import RunArgs
from gadgetsmith.toolchain.cli.state import state, store_path
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.run import resolve_source


def execute(a: RunArgs) -> None:
    """Load, attach, decode and print until the timeout, the count or a signal."""
    if a.image.startswith("-"):
        raise UsageError(f"{a.image}: the image comes first, then the gadget's params "
                         f"(gadget run IMAGE {a.image} ...)")
    flags = _flag_params(a.extra)
    params: dict[str, str | None] = {**_params(a.param), **flags}
    g = _gadget(resolve_source(a.image, store_path(a.store), a.policy, a.no_verify), params,
                a.filter_, a.sort, a.host, _selector(a), set(flags))
    try:
        with _stop_on_signals(g), g:
            try:
                out = Output(a.output, g.datasources, a.fields, on_warning=_warn,
                             metadata=g.metadata)
            except ValueError as e:
                raise UsageError(str(e)) from None
            out.start()
            with contextlib.suppress(KeyboardInterrupt):
                g.run(out, timeout=a.timeout, count=a.count, interval=a.interval,
                      on_idle=out.flush)
    except RuntimeGadgetError as e:
        raise _cli_error(e) from None
    finally:
        if g.lost_samples:
            echo_err(f"warning: {g.lost_samples} records lost in total")


def _selector(a: RunArgs) -> ContainerSelector:
    """The container options' selection (not yet validated)."""
    return ContainerSelector(a.containername or "", a.k8s_namespace or "", a.k8s_podname or "",
                             a.k8s_containername or "", a.runtimes or "", a.k8s_selector or "")


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
    echo_err(f"warning: {n} records lost by {ds} (the reader fell behind the kernel)")


def _warn(text: str) -> None:
    echo_err(f"warning: {text}")


def _debug(text: str) -> None:
    echo_err(f"debug: {text}")
