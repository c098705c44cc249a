"""The cosign "simple signing" payload: the JSON document a signature is made over.

    {"critical": {"identity": {"docker-reference": "<registry>/<repository>"},
                  "image": {"docker-manifest-digest": "sha256:<hex>"},
                  "type": "cosign container image signature"},
     "optional": null | {"<k>": "<v>", ...}}

Bytes are produced like Go's encoding/json (compact, field order as cosign, optional keys
sorted). Parsing is strict: duplicate keys anywhere are rejected, so two readers can never
disagree about which digest a payload names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.toolchain.errors import FormatError
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.gojson import sorted_map
from gadgetsmith.toolchain.signing import SIGNATURE_TYPE


class PayloadError(FormatError):
    """A payload that is not a well-formed simple-signing document (message = reason)."""


class DuplicateKeyError(FormatError):
    """A JSON object has the same key twice (``key``): refused, since readers disagree on
    which value counts."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate JSON key {key!r}")
        self.key = key


def strict_json(data: bytes | str) -> Any:
    """json.loads that refuses duplicate object keys (raises DuplicateKeyError)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise DuplicateKeyError(k)
            out[k] = v
        return out

    return json.loads(data, object_pairs_hook=hook)


def build_payload(identity: str, digest: str, optional: dict[str, str] | None = None) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": sorted_map(optional) if optional else None,
    }
    return go_json(doc)


@dataclass
class Payload:
    digest: str
    identity: str
    type: str
    optional: dict[str, Any] = field(default_factory=dict)


def parse_payload(data: bytes) -> Payload:
    try:
        doc = strict_json(data)
    except DuplicateKeyError as e:
        raise PayloadError(f"payload has a duplicate JSON key {e.key!r}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise PayloadError(f"payload is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("critical"), dict):
        raise PayloadError("payload has no 'critical' object")
    crit = doc["critical"]
    image = crit.get("image")
    if not isinstance(image, dict) or not isinstance(image.get("docker-manifest-digest"), str):
        raise PayloadError("payload has no critical.image.docker-manifest-digest")
    ident = crit.get("identity")
    identity = ident.get("docker-reference") if isinstance(ident, dict) else None
    if identity is not None and not isinstance(identity, str):
        raise PayloadError("payload critical.identity.docker-reference is not a string")
    typ = crit.get("type")
    if typ != SIGNATURE_TYPE:
        raise PayloadError(f"payload type is {typ!r}, expected {SIGNATURE_TYPE!r}")
    optional = doc.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise PayloadError("payload 'optional' is not an object")
    return Payload(image["docker-manifest-digest"], identity or "", typ, optional or {})
