"""JSON Schemas shipped with gadgetsmith."""

from __future__ import annotations

from pathlib import Path

#: the folder of the schema files (installed as plain files next to this module)
FOLDER = Path(__file__).resolve().parent


def schema_file(name: str) -> Path:
    """The path of ``<name>.schema.json`` (gadget, build, policy, gadget-test).

    A plain path: importlib.resources costs more to import than every schema lookup of
    a command together (~16 M instructions, on each push and pull)."""
    return FOLDER / f"{name}.schema.json"
