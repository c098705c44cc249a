"""The `gadget` console script. A plain `gadget run`, `list`, `inspect`, `push`, `pull` or
`build` line (cli/runargs.py) goes straight to the command's work (cli/runcore.py, cli/plain.py,
cli/plaininspect.py, cli/plainregistry.py, cli/plainbuild.py) without importing typer and click: run's first
event comes that much sooner, the others return sooner. Every other line goes to the typer root
(cli/app.py). Modules are imported by name when chosen, as the lazy command group imports
a command's module."""

from __future__ import annotations

import importlib
import os
import sys

from gadgetsmith.toolchain.cli.runargs import parse
from gadgetsmith.toolchain.cli.state import state

_PKG = __package__ or "gadgetsmith.toolchain.cli"


def run() -> None:
    argv = sys.argv[1:]
    plain = parse(argv)
    if plain is None:
        importlib.import_module(f"{_PKG}.app").run()
        return
    state.store, command, args = plain
    state.debug = "--debug" in argv or os.environ.get("GADGETSMITH_DEBUG", "") not in ("", "0")
    module, _, function = command.target.partition(":")
    try:
        getattr(importlib.import_module(f"{_PKG}.{module}"), function)(args)
        code = 0
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - one line unless --debug
        code = _failed(e)
    sys.stdout.flush()
    if state.fast_exit:  # as app.run(): the command's work is durable, skip finalisation
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _failed(e: BaseException) -> int:
    """What the typer root prints and returns for ``e`` (cli/app.py's rules)."""
    code: int = importlib.import_module(f"{_PKG}.app").report_failure(e)
    return code


if __name__ == "__main__":
    run()
