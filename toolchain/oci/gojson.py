"""JSON encoded the way Go's encoding/json does it, so our manifests match ig's bytes.

Compact, object keys in the order given (dicts keep insertion order; callers build
struct-like dicts in Go's field order and sort map-like ones), and ``<``, ``>``, ``&``,
U+2028, U+2029 escaped.
"""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def dumps(obj: Any) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if any(c in text for c in _ESCAPES):
        text = "".join(_ESCAPES.get(c, c) for c in text)
    return text.encode("utf-8")


def sorted_map(d: dict[str, Any]) -> dict[str, Any]:
    """A Go map marshals with its keys sorted."""
    return {k: d[k] for k in sorted(d)}
