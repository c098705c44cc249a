"""Verification of cosign signatures and of the image graph they cover.

Signatures are looked for where ig looks, in its order: the legacy ``sha256-<hex>.sig``
manifest, then the OCI 1.1 referrers of the digest (the registry's referrers API, else the
referrers tag schema's ``sha256-<hex>`` index): cosign's OCI 1.1 signature manifests
(artifactType ``application/vnd.dev.cosign.artifact.sig.v1+json``, the same simple-signing
layers) and Sigstore bundles (cosign v3's default, :mod:`.bundle`). A referrer's own
``artifactType`` (or config media type) decides, never the index entry's (cosign v2.6.5
writes the wrong one there), and its ``subject`` must be the digest.

A simple-signing signature is accepted when, for one layer:

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
from gadgetsmith.toolchain.signing import (
    COSIGN_ARTIFACT_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    referrers_tag,
    signature_tag,
)
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.bundle import check_bundle, is_bundle_type
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

    # optional: def referrers(self, digest: str) -> list[bytes]
    #   the raw manifests referring to ``digest`` (OCI 1.1), each checked against its digest


@dataclass
class Verified:
    digest: str
    key: PublicKey
    layer: int
    layers: int
    identity: str
    optional: dict[str, Any] = field(default_factory=dict)
    signature_manifest: str = ""
    #: "cosign" (the sha256-<hex>.sig tag), "oci11" (cosign's OCI 1.1 referrer) or "bundle"
    format: str = "cosign"

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "key": self.key.source,
            "keyFingerprint": self.key.fingerprint(),
            "format": self.format,
            "signatureTag": signature_tag(self.digest) if self.format == "cosign"
            else referrers_tag(self.digest),
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
                "(to accept signatures made for another repository, e.g. on a mirror: "
                "--ignore-identity, or 'identities'/'ignoreIdentity' in the policy entry)"
            )
    return key, p.identity, p.optional


def referrer_signatures(source: SignatureSource, digest: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(format, manifest digest, manifest) of the signatures among ``digest``'s referrers:
    "oci11" for cosign's OCI 1.1 signature manifests, "bundle" for Sigstore bundles. Other
    referrers (attestations, SBOMs) and manifests whose subject is another digest are left out."""
    get = getattr(source, "referrers", None)
    out = []
    for raw in get(digest) if get is not None else []:
        try:
            doc = strict_json(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(doc, dict) or (doc.get("subject") or {}).get("digest") != digest:
            continue
        atype = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        kind = "oci11" if atype == COSIGN_ARTIFACT_TYPE else "bundle" if is_bundle_type(atype) else None
        if kind and isinstance(doc.get("layers"), list):
            out.append((kind, sha256_digest(raw), doc))
    return out


def _check_bundle_layer(source: SignatureSource, layer: Any, digest: str,
                        keys: list[PublicKey]) -> PublicKey:
    if not isinstance(layer, dict) or not is_bundle_type(layer.get("mediaType")):
        raise ValueError("the bundle manifest's layer is not a Sigstore bundle")
    bdigest = layer.get("digest")
    if not isinstance(bdigest, str):
        raise ValueError("the bundle manifest's layer has no digest")
    try:
        data = source.blob(bdigest)
    except MissingBlob:
        raise ValueError(f"bundle blob {bdigest} is missing from {source.where}") from None
    if sha256_digest(data) != bdigest:
        raise ValueError(f"bundle blob does not match its digest {bdigest} (tampered bundle)")
    return check_bundle(data, digest, keys)


def verify_digest(
    source: SignatureSource,
    digest: str,
    keys: list[PublicKey],
    identities: set[str] | None,
    label: str,
) -> Verified:
    """Find and check the signature of ``digest``; raise VerificationError with all reasons.

    The ``sha256-<hex>.sig`` manifest first; the referrers only when it has none that
    verifies (as ig, which stops at the first format it finds)."""
    tag = signature_tag(digest)
    raw = source.signature_manifest(digest)
    reasons: list[str] = []
    if raw is not None:
        try:
            layers = sm.parse(raw, tag)
        except sm.SignatureManifestError as e:
            layers = None
            reasons.append(str(e))
        if layers == []:
            reasons.append(f"signature manifest {tag} has no signature layers")
        for i, layer in enumerate(layers or [], 1):
            n = len(layers or [])
            try:
                key, identity, optional = check_layer(source, layer, digest, keys, identities)
            except ValueError as e:
                reasons.append(f"signature {i}/{n}: {e}")
                continue
            return Verified(digest, key, i, n, identity, optional, sha256_digest(raw))
    referrers = referrer_signatures(source, digest)
    if raw is None and not referrers:
        raise VerificationError(
            f"{label}: no signature found for {digest} (no {tag} and no cosign or Sigstore "
            f"bundle referrer in {source.where}): sign it with 'gadget sign', or pull it with "
            "its signature"
        )
    for kind, mdigest, doc in referrers:
        what = "bundle" if kind == "bundle" else "OCI 1.1 signature"
        n = len(doc["layers"])
        for i, layer in enumerate(doc["layers"], 1):
            try:
                if kind == "bundle":
                    # the Statement names only the digest: there is no identity to check
                    return Verified(digest, _check_bundle_layer(source, layer, digest, keys), i, n,
                                    "", {}, mdigest, kind)
                key, identity, optional = check_layer(source, layer, digest, keys, identities)
                return Verified(digest, key, i, n, identity, optional, mdigest, kind)
            except ValueError as e:
                reasons.append(f"{what} {mdigest[:19]} layer {i}/{n}: {e}")
    if len(reasons) == 1 and raw is not None:
        raise VerificationError(f"{label}: {reasons[0]}" if "signature manifest" in reasons[0]
                                else f"{label}: signature rejected: {reasons[0]}")
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
    g = _Graph(read, label)
    top_raw = g.fetch(root, "index" if root.get("mediaType") == mt.INDEX else "manifest",
                      manifest=True)
    top = g.doc(top_raw, "index", root["digest"])
    if isinstance(top.get("manifests"), list):
        manifests = list(top["manifests"])
    else:
        manifests = [root]
    for md in manifests:
        if not isinstance(md, dict):
            raise IntegrityError(f"{label}: index {root['digest']} has a malformed manifest entry")
        plat = md.get("platform") or {}
        what = f"manifest ({plat.get('os', '?')}/{plat.get('architecture', '?')})" if plat else "manifest"
        m = top if md is root else g.doc(g.fetch(md, what, manifest=True), what, md["digest"])
        if md.get("mediaType") not in (None, *_MANIFEST_TYPES):
            continue
        g.check_blobs(md["digest"], m)
    return manifests


class _Graph:
    """The reads of :func:`check_graph`: each blob checked against its descriptor."""

    def __init__(self, read: Callable[[str, bool], bytes], label: str) -> None:
        self.read = read
        self.label = label

    def fetch(self, desc: dict[str, Any], what: str, missing_ok: bool = False,
              manifest: bool = False) -> bytes:
        label = self.label
        d = desc.get("digest")
        if not isinstance(d, str):
            raise IntegrityError(f"{label}: {what} has no digest")
        try:
            data = self.read(d, manifest)
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

    def doc(self, data: bytes, what: str, d: str) -> dict[str, Any]:
        try:
            out = strict_json(data)
        except DuplicateKeyError as e:
            raise IntegrityError(f"{self.label}: {what} {d} has a duplicate JSON key {e.key!r}") from None
        except (ValueError, UnicodeDecodeError):
            raise IntegrityError(f"{self.label}: {what} {d} is not valid JSON") from None
        if not isinstance(out, dict):
            raise IntegrityError(f"{self.label}: {what} {d} is not a JSON object")
        return out

    def check_blobs(self, digest: str, m: dict[str, Any]) -> None:
        """The config and layers of manifest ``m`` (whose digest is ``digest``)."""
        cfg = m.get("config")
        if isinstance(cfg, dict):
            cwhat = f"config of {digest[:19]}"
            if cfg.get("digest") == mt.EMPTY_DIGEST:
                # the OCI empty config "{}" may be only inlined; its digest is fixed
                try:
                    self.fetch(cfg, cwhat, missing_ok=True)
                except MissingBlob:
                    pass
            else:
                self.fetch(cfg, cwhat)
        for layer in m.get("layers") or []:
            if not isinstance(layer, dict):
                raise IntegrityError(f"{self.label}: manifest {digest} has a malformed layer entry")
            kind = mt.LAYER_NAMES.get(layer.get("mediaType", ""), layer.get("mediaType", "?"))
            self.fetch(layer, f"{kind} layer of {digest[:19]}")


# ------------------------------------------------------------------------------ staged downloads
def pull_verifier(
    ref: Reference, keys: list[PublicKey], label: str | None = None, where: str = "the pulled image",
    identities: set[str] | None | bool = True,
) -> Callable[..., None]:
    """A check for a staged pull: ``check(read, root_desc, sig_manifest_bytes,
    referrers_index_bytes=None)`` raises VerificationError unless a signature of
    ``root_desc`` verifies with ``keys``. ``identities``: the repository names a signature
    may name (True: ``ref``'s own; None: any, the policy's ``ignoreIdentity``)."""
    names: set[str] | None = {ref.name} if identities is True else (identities or None)

    def check(raw_read: Callable[[str, bool], bytes], root: dict[str, Any], sig_raw: bytes | None,
              referrers_raw: bytes | None = None) -> None:
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

            def referrers(self, digest: str) -> list[bytes]:
                if referrers_raw is None or digest != root["digest"]:
                    return []
                try:
                    index = strict_json(referrers_raw)
                except (ValueError, UnicodeDecodeError):
                    return []
                out = []
                for e in index.get("manifests") or [] if isinstance(index, dict) else []:
                    try:
                        data = read(e["digest"], True)
                    except (MissingBlob, KeyError, TypeError):
                        continue
                    if sha256_digest(data) == e["digest"]:
                        out.append(data)
                return out

        name = label or str(ref)
        check_graph(read, root, name)
        verify_digest(_Staged(), root["digest"], keys, names, name)

    return check
