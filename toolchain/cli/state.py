"""The root options' values (``gadget --store S --debug CMD``), in a module of its own so
the entry point and `gadget run`'s start-up (cli/entry.py) need neither typer nor click."""

from __future__ import annotations

from pathlib import Path


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
