"""Verification of cosign tag-scheme signatures and of the image graph they cover.

A signature is accepted when, for one layer of the ``sha256-<hex>.sig`` manifest:

1. the layer is a simple-signing payload with one well-formed base64 signature annotation;
2. the payload blob hashes to the layer's digest;
3. the signature verifies over those exact payload bytes with one of the given keys;
4. the payload names the digest being verified (``critical.image.docker-manifest-digest``);
5. the payload's ``docker-reference`` is the image's repository (unless identity is ignored).

The signature covers the index digest; :func:`check_graph` then proves that every manifest,
config and layer below the index hashes to the digest its parent names, so a modified
manifest, config or layer cannot hide behind a valid signature.

Sources (local store, registry) implement :class:`SignatureSource`; every rejection comes
with a reason a user can act on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LayoutError, sha256_digest
from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.toolchain.errors import IntegrityError, MissingBlob, VerificationError
from gadgetsmith.toolchain.signing import SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE, signature_tag
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.crypto import all_ecdsa, is_der_ecdsa_signature, verify_bytes
from gadgetsmith.toolchain.signing.keys import PublicKey
from gadgetsmith.toolchain.signing.payload import (
    DuplicateKeyError,
    PayloadError,
    parse_payload,
    strict_json,
)


class SignatureSource(Protocol):
    """Where signature manifests and their blobs come from."""

    where: str

    def signature_manifest(self, digest: str) -> bytes | None:
        """The raw manifest tagged ``sha256-<hex>.sig`` for ``digest``, or None."""

    def blob(self, digest: str) -> bytes:
        """Raw bytes stored under ``digest`` (unchecked); raise MissingBlob if absent."""


@dataclass
class Verified:
    digest: str
    key: PublicKey
    layer: int
    layers: int
    identity: str
    optional: dict[str, Any] = field(default_factory=dict)
    signature_manifest: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "key": self.key.source,
            "keyFingerprint": self.key.fingerprint(),
            "signatureTag": signature_tag(self.digest),
            "signatureManifest": self.signature_manifest,
            "layer": self.layer,
            "layers": self.layers,
            "identity": self.identity,
            "annotations": self.optional,
            "igCompatible": sm.ig_compatible(self.layers),
        }


def _repo_name(text: str) -> str | None:
    try:
        return parse(text, default_tag=False).name
    except InvalidReference:
        return None


def _key_names(keys: list[PublicKey]) -> str:
    return ", ".join(k.source for k in keys)


def check_layer(
    source: SignatureSource,
    layer: dict[str, Any],
    digest: str,
    keys: list[PublicKey],
    identities: set[str] | None,
) -> tuple[PublicKey, str, dict[str, Any]]:
    """Verify one signature layer; return (key, identity, optional) or raise ValueError(reason)."""
    media = layer.get("mediaType")
    if media != SIMPLESIGNING_MEDIA_TYPE:
        raise ValueError(f"media type {media!r} is not a simple-signing payload")
    ann = layer.get("annotations") or {}
    sig_b64 = ann.get(SIGNATURE_ANNOTATION)
    if not isinstance(sig_b64, str) or not sig_b64:
        raise ValueError(f"no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"the {SIGNATURE_ANNOTATION} annotation is not valid base64 (truncated or corrupted)"
        ) from None
    if all_ecdsa(keys) and not is_der_ecdsa_signature(signature):
        raise ValueError(
            f"the {SIGNATURE_ANNOTATION} annotation is not a well-formed ECDSA signature "
            "(truncated or corrupted)"
        )
    pdigest = layer["digest"]
    try:
        payload = source.blob(pdigest)
    except MissingBlob:
        raise ValueError(f"payload blob {pdigest} is missing from {source.where}") from None
    if sha256_digest(payload) != pdigest:
        raise ValueError(f"payload blob does not match its digest {pdigest} (tampered payload)")
    key = next((k for k in keys if verify_bytes(k, signature, payload)), None)
    if key is None:
        raise ValueError(
            f"signature does not verify over the payload with the given key(s) ({_key_names(keys)}): "
            "signed by another key, or the payload or signature was modified"
        )
    try:
        p = parse_payload(payload)
    except PayloadError as e:
        raise ValueError(str(e)) from None
    if p.digest != digest:
        raise ValueError(f"signature is for digest {p.digest}, not for {digest}")
    if identities is not None:
        name = _repo_name(p.identity) if p.identity else None
        if name not in identities:
            want = " or ".join(sorted(identities)) or "?"
            raise ValueError(
                f"signed identity {p.identity!r} is not the repository {want} "
                "(--ignore-identity to accept signatures made for another repository)"
            )
    return key, p.identity, p.optional


def verify_digest(
    source: SignatureSource,
    digest: str,
    keys: list[PublicKey],
    identities: set[str] | None,
    label: str,
) -> Verified:
    """Find and check the signature of ``digest``; raise VerificationError with all reasons."""
    tag = signature_tag(digest)
    raw = source.signature_manifest(digest)
    if raw is None:
        raise VerificationError(
            f"{label}: no signature found for {digest} (no {tag} in {source.where}): "
            "sign it with 'gadget sign', or pull it with its signature"
        )
    try:
        layers = sm.parse(raw, tag)
    except sm.SignatureManifestError as e:
        raise VerificationError(f"{label}: {e}") from None
    if not layers:
        raise VerificationError(f"{label}: signature manifest {tag} has no signature layers")
    reasons = []
    for i, layer in enumerate(layers, 1):
        try:
            key, identity, optional = check_layer(source, layer, digest, keys, identities)
        except ValueError as e:
            reasons.append(f"signature {i}/{len(layers)}: {e}")
            continue
        return Verified(digest, key, i, len(layers), identity, optional, sha256_digest(raw))
    raise VerificationError(f"{label}: signature rejected: " + "; ".join(reasons))


# ------------------------------------------------------------------------------ graph integrity
_MANIFEST_TYPES = (mt.INDEX, mt.MANIFEST, "application/vnd.docker.distribution.manifest.v2+json",
                   "application/vnd.docker.distribution.manifest.list.v2+json")


def check_graph(
    read: Callable[[str, bool], bytes], root: dict[str, Any], label: str
) -> list[dict[str, Any]]:
    """Check every blob under ``root`` against its digest and size. Returns the per-arch
    manifest descriptors of an index (``[root]`` for a bare manifest).

    ``read(digest, is_manifest)`` returns raw bytes or raises MissingBlob.
    """

    def fetch(desc: dict[str, Any], what: str, missing_ok: bool = False, manifest: bool = False) -> bytes:
        d = desc.get("digest")
        if not isinstance(d, str):
            raise IntegrityError(f"{label}: {what} has no digest")
        try:
            data = read(d, manifest)
        except MissingBlob:
            if missing_ok:
                raise
            raise IntegrityError(f"{label}: {what} {d} is missing") from None
        actual = sha256_digest(data)
        if actual != d:
            raise IntegrityError(
                f"{label}: {what} {d} does not match its digest (content hashes to {actual}): "
                "the image was modified after it was signed"
            )
        size = desc.get("size")
        if isinstance(size, int) and size != len(data):
            raise IntegrityError(f"{label}: {what} {d} is {len(data)} bytes, its descriptor says {size}")
        return data

    def doc(data: bytes, what: str, d: str) -> dict[str, Any]:
        try:
            out = strict_json(data)
        except DuplicateKeyError as e:
            raise IntegrityError(f"{label}: {what} {d} has a duplicate JSON key {e.key!r}") from None
        except (ValueError, UnicodeDecodeError):
            raise IntegrityError(f"{label}: {what} {d} is not valid JSON") from None
        if not isinstance(out, dict):
            raise IntegrityError(f"{label}: {what} {d} is not a JSON object")
        return out

    top_raw = fetch(root, "index" if root.get("mediaType") == mt.INDEX else "manifest", manifest=True)
    top = doc(top_raw, "index", root["digest"])
    if isinstance(top.get("manifests"), list):
        manifests = top["manifests"]
    else:
        manifests = [root]
    for md in manifests:
        if not isinstance(md, dict):
            raise IntegrityError(f"{label}: index {root['digest']} has a malformed manifest entry")
        plat = md.get("platform") or {}
        what = f"manifest ({plat.get('os', '?')}/{plat.get('architecture', '?')})" if plat else "manifest"
        m = top if md is root else doc(fetch(md, what, manifest=True), what, md["digest"])
        if md.get("mediaType") not in (None, *_MANIFEST_TYPES):
            continue
        cfg = m.get("config")
        if isinstance(cfg, dict):
            cwhat = f"config of {md['digest'][:19]}"
            if cfg.get("digest") == mt.EMPTY_DIGEST:
                # the OCI empty config "{}" may be only inlined; its digest is fixed
                try:
                    fetch(cfg, cwhat, missing_ok=True)
                except MissingBlob:
                    pass
            else:
                fetch(cfg, cwhat)
        for layer in m.get("layers") or []:
            if not isinstance(layer, dict):
                raise IntegrityError(f"{label}: manifest {md['digest']} has a malformed layer entry")
            kind = mt.LAYER_NAMES.get(layer.get("mediaType", ""), layer.get("mediaType", "?"))
            fetch(layer, f"{kind} layer of {md['digest'][:19]}")
    return manifests


# ------------------------------------------------------------------------------ staged downloads
def pull_verifier(
    ref: Reference, keys: list[PublicKey], label: str | None = None, where: str = "the pulled image"
) -> Callable[[Callable[[str, bool], bytes], dict[str, Any], bytes | None], None]:
    """A check for a staged pull: ``check(read, root_desc, sig_manifest_bytes)`` raises
    VerificationError unless the signature of ``root_desc`` verifies with ``keys``."""

    def check(raw_read: Callable[[str, bool], bytes], root: dict[str, Any], sig_raw: bytes | None) -> None:
        def read(digest: str, is_manifest: bool = False) -> bytes:
            try:
                return raw_read(digest, is_manifest)
            except (LayoutError, OSError):
                raise MissingBlob(digest) from None

        class _Staged:
            def __init__(self) -> None:
                self.where = where

            def signature_manifest(self, digest: str) -> bytes | None:
                return sig_raw if digest == root["digest"] else None

            def blob(self, digest: str) -> bytes:
                return read(digest, False)

        name = label or str(ref)
        check_graph(read, root, name)
        verify_digest(_Staged(), root["digest"], keys, {ref.name}, name)

    return check
