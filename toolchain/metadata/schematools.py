"""The schema libraries, imported only when needed (~100 ms together): jsonschema for the
diagnostics of a document the fast check refuses, fastjsonschema to generate that check."""

from __future__ import annotations

from typing import Any

import fastjsonschema
from fastjsonschema.ref_resolver import RefResolver
from gadgetsmith.toolchain.metadata.fastschema import standalone
from jsonschema import Draft202012Validator


def full_validator(schema: dict[str, Any]) -> Any:
    """jsonschema's validator of ``schema``: every error, with paths."""
    return Draft202012Validator(schema)


def _no_remote(uri: str) -> Any:
    raise ValueError(f"{uri}: the schemas reference nothing outside themselves")


def _ref_siblings_in_all_of(node: Any) -> Any:
    """``{"$ref": R, k: v...}`` as ``{"allOf": [{"$ref": R}, {k: v...}]}``: draft 2020-12
    applies a $ref's sibling keywords (jsonschema does), fastjsonschema ignores them."""
    if isinstance(node, list):
        return [_ref_siblings_in_all_of(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _ref_siblings_in_all_of(v) for k, v in node.items()}
    rest = {k: v for k, v in out.items() if k != "$ref"}
    if "$ref" in out and rest:
        return {"allOf": [{"$ref": out["$ref"]}, rest]}
    return out


def generate(schema: dict[str, Any]) -> str:
    """Python source that raises on a document ``schema`` refuses; a standalone module
    (see :func:`fastschema.standalone`). Formats are not asserted and defaults are not
    filled in, as jsonschema's validator does neither."""
    handlers = {"http": _no_remote, "https": _no_remote}
    schema = _ref_siblings_in_all_of(schema)
    source = fastjsonschema.compile_to_code(schema, handlers=handlers, use_default=False,
                                            use_formats=False)
    entry = RefResolver.from_schema(schema, handlers=handlers, store={}).get_scope_name()
    return standalone(source, entry)
