"""Key-based Sigstore bundles, the signature format cosign v3 writes by default.

cosign (``--new-bundle-format``, the default since v3) stores a signature as an OCI 1.1
referrer of the signed digest: a manifest with ``artifactType``
``application/vnd.dev.sigstore.bundle.v0.3+json`` whose one layer is the bundle JSON. With
a key (no certificate), the bundle's ``dsseEnvelope`` holds an in-toto Statement whose
``subject[].digest.sha256`` names the signed digest, signed over DSSE's pre-authentication
encoding of (payloadType, payload). :func:`check_bundle` accepts such a bundle when:

1. it is a bundle with a ``dsseEnvelope`` (a ``messageSignature`` bundle is refused);
2. one signature verifies over ``PAE(payloadType, payload)`` with one of the keys;
3. only then the payload is read: an in-toto Statement with the digest among its subjects.

Like ig (and cosign with ``--insecure-ignore-tlog``) no transparency-log entry or
timestamp is checked, and the Statement names no repository, so there is no identity to
compare: a bundle proves "this key signed this digest", nothing about the name.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from gadgetsmith.toolchain.signing.crypto import verify_bytes
from gadgetsmith.toolchain.signing.keys import PublicKey
from gadgetsmith.toolchain.signing.payload import DuplicateKeyError, strict_json

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: every bundle version's media type starts so (v0.1 .. v0.3)
BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")


def is_bundle_type(media_type: str | None) -> bool:
    return isinstance(media_type, str) and media_type.startswith(BUNDLE_MEDIA_PREFIX)


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the envelope's signatures sign."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"bundle has no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"bundle {what} is not valid base64 (truncated or corrupted)") from None


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = strict_json(data)
    except DuplicateKeyError as e:
        raise ValueError(f"{what} has a duplicate JSON key {e.key!r} (tampered)") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc


def check_bundle(data: bytes, digest: str, keys: list[PublicKey]) -> PublicKey:
    """The key that signed the bundle ``data`` for ``digest``; raise ValueError(reason)."""
    bundle = _json(data, "bundle")
    if not is_bundle_type(bundle.get("mediaType")):
        raise ValueError(f"bundle media type {bundle.get('mediaType')!r} is not a Sigstore bundle")
    env = bundle.get("dsseEnvelope")
    if not isinstance(env, dict):
        kind = "a messageSignature" if "messageSignature" in bundle else "no dsseEnvelope"
        raise ValueError(f"bundle has {kind}; only cosign's DSSE (in-toto) bundles are read")
    ptype = env.get("payloadType")
    if ptype != IN_TOTO_PAYLOAD_TYPE:
        raise ValueError(f"bundle payloadType {ptype!r} is not {IN_TOTO_PAYLOAD_TYPE!r}")
    body = _b64(env.get("payload"), "dsseEnvelope.payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise ValueError("bundle dsseEnvelope has no signatures")
    signed = pae(ptype, body)
    key = None
    for i, s in enumerate(sigs, 1):
        raw = _b64(s.get("sig") if isinstance(s, dict) else None, f"dsseEnvelope.signatures[{i}].sig")
        key = next((k for k in keys if verify_bytes(k, raw, signed)), None)
        if key is not None:
            break
    if key is None:
        cert = "certificate" in (bundle.get("verificationMaterial") or {})
        raise ValueError(
            "bundle signature does not verify with the given key(s) "
            f"({', '.join(k.source for k in keys)})"
            + (": it was signed keyless (a certificate), which gadget does not verify" if cert
               else ": signed by another key, or the bundle was modified")
        )
    # read the statement only once it is known to be signed
    stmt = _json(body, "bundle payload (in-toto Statement)")
    if stmt.get("_type") not in STATEMENT_TYPES:
        raise ValueError(f"bundle payload _type {stmt.get('_type')!r} is not an in-toto Statement")
    subjects = stmt.get("subject")
    algo, _, hexd = digest.partition(":")
    named = [s.get("digest", {}).get(algo) for s in subjects or [] if isinstance(s, dict)
             and isinstance(s.get("digest"), dict)]
    if hexd not in named:
        shown = ", ".join(f"{algo}:{n}" for n in named if isinstance(n, str)) or "none"
        raise ValueError(f"bundle is for digest {shown}, not for {digest}")
    return key


__all__ = ["BUNDLE_MEDIA_TYPE", "check_bundle", "is_bundle_type", "pae"]
