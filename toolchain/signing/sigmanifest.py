"""Cosign's tag-scheme signature manifest (``sha256-<hex>.sig``).

An OCI image manifest whose config is a minimal image config and whose layers are
simple-signing payloads; each layer carries the base64 signature over its payload bytes in
the ``dev.cosignproject.cosign/signature`` annotation. Several signatures accumulate as
layers (ig's verifier only accepts a manifest with exactly one layer, see
:func:`ig_compatible`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.toolchain.errors import FormatError
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.signing import SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE
from gadgetsmith.toolchain.signing.payload import DuplicateKeyError, strict_json

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


class SignatureManifestError(FormatError):
    """A signature manifest that cannot be read (message = reason)."""


@dataclass
class SignatureLayer:
    """One signature: the payload descriptor (with its annotations) and the payload bytes."""

    descriptor: dict[str, Any]
    payload: bytes

    @property
    def signature_b64(self) -> str | None:
        return (self.descriptor.get("annotations") or {}).get(SIGNATURE_ANNOTATION)


def new_layer(payload: bytes, signature_b64: str, extra: dict[str, str] | None = None) -> SignatureLayer:
    ann = {SIGNATURE_ANNOTATION: signature_b64}
    for k, v in (extra or {}).items():
        ann.setdefault(k, v)
    desc = {
        "mediaType": SIMPLESIGNING_MEDIA_TYPE,
        "size": len(payload),
        "digest": sha256_digest(payload),
        "annotations": ann,
    }
    return SignatureLayer(desc, payload)


@dataclass
class BuiltSignatureManifest:
    manifest: bytes
    config: bytes
    payloads: list[bytes]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": mt.MANIFEST, "digest": self.digest, "size": len(self.manifest)}

    def blobs(self) -> list[bytes]:
        return [*self.payloads, self.config, self.manifest]


#: what cosign writes as the config's (and every history entry's) creation time: Go's zero
#: time, so the config depends on the layers only and is byte-identical to cosign's
ZERO_TIME = "0001-01-01T00:00:00Z"


def build(layers: list[SignatureLayer], created: str = ZERO_TIME) -> BuiltSignatureManifest:
    """Manifest + config for ``layers`` (in order), shaped like cosign's."""
    zero = ZERO_TIME
    config = go_json(
        {
            "architecture": "",
            "created": created,
            "history": [{"created": zero} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [x.descriptor["digest"] for x in layers]},
            "config": {},
        }
    )
    manifest = go_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256_digest(config)},
            "layers": [x.descriptor for x in layers],
        }
    )
    return BuiltSignatureManifest(manifest, config, [x.payload for x in layers])


def parse(data: bytes, where: str) -> list[dict[str, Any]]:
    """Layer descriptors of a signature manifest; strict (duplicate JSON keys are refused)."""
    try:
        doc = strict_json(data)
    except DuplicateKeyError as e:
        raise SignatureManifestError(
            f"signature manifest {where} has a duplicate JSON key {e.key!r} (tampered manifest)"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SignatureManifestError(f"signature manifest {where} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise SignatureManifestError(f"signature manifest {where} is not an image manifest (no layers)")
    layers = doc["layers"]
    for i, d in enumerate(layers, 1):
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str):
            raise SignatureManifestError(f"signature manifest {where}: layer {i} is not a descriptor")
        ann = d.get("annotations")
        if ann is not None and not isinstance(ann, dict):
            raise SignatureManifestError(f"signature manifest {where}: layer {i} annotations not an object")
    return list(layers)


def ig_compatible(layer_count: int) -> bool:
    """ig (legacy cosign verifier) accepts a signature manifest with exactly one layer."""
    return layer_count == 1


__all__ = [
    "BuiltSignatureManifest",
    "SignatureLayer",
    "SignatureManifestError",
    "build",
    "ig_compatible",
    "new_layer",
    "parse",
]
