"""Signing and verification against a registry, on top of :mod:`..registry`.

* :func:`sign_remote`: sign the digest a remote reference resolves to and push the
  ``sha256-<hex>.sig`` manifest, keeping the signatures already there (cosign's way);
  optionally also attach the signature as an OCI 1.1 referrer (listed in the referrers tag
  schema's ``sha256-<hex>`` index where the registry has no referrers API).
* :func:`verify_remote`: fetch the image graph and its signature, check both.
* :func:`fetch_signature_into_store`: bring missing signature tags of a local image into
  the store (what ig does before verifying; through :func:`..registry.transfer.fetch_signatures`),
  so later checks work offline.

Concurrent remote signers race on the tag like cosign's do (last writer wins); the local
store path is the one with a lock.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.runtime.oci.reference import Reference
from gadgetsmith.toolchain.errors import MissingBlob, NotFoundError, VerificationError
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.policy import PULL, PUSH
from gadgetsmith.toolchain.registry.api import RemoteOptions
from gadgetsmith.toolchain.registry.capabilities import supports_referrers
from gadgetsmith.toolchain.registry.client import DigestMismatch, RegistryClient
from gadgetsmith.toolchain.registry.transfer import fetch_signatures
from gadgetsmith.toolchain.signing import COSIGN_ARTIFACT_TYPE, referrers_tag, signature_tag
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.keys import PublicKey
from gadgetsmith.toolchain.signing.local import (
    Signed,
    SignResult,
    VerifyResult,
    digests_to_sign,
    make_layers,
    signed_layers,
    verify_signatures,
)
from gadgetsmith.toolchain.signing.payload import strict_json
from gadgetsmith.toolchain.signing.source import StoreSource
from gadgetsmith.toolchain.signing.verify import check_graph


class RegistrySource:
    """:class:`~.verify.SignatureSource` reading one repository of a registry."""

    def __init__(self, client: RegistryClient, repo: str) -> None:
        self.client = client
        self.repo = repo
        self.where = f"{client.host}/{repo}"

    def signature_manifest(self, digest: str) -> bytes | None:
        got = self.client.manifest_get(self.repo, signature_tag(digest), missing_ok=True)
        return None if got is None else got[0]

    def referrers(self, digest: str) -> list[bytes]:
        """Manifests referring to ``digest``: the referrers API, else the tag schema's index."""
        entries = self.client.referrers(self.repo, digest)
        if entries is None:
            got = self.client.manifest_get(self.repo, referrers_tag(digest), missing_ok=True)
            entries = _manifest_list(got[0]) if got is not None else []
        return [self.manifest(e["digest"]) for e in entries
                if isinstance(e, dict) and isinstance(e.get("digest"), str)]

    def manifest(self, digest: str) -> bytes:
        try:
            return self.client.manifest_get(self.repo, digest)[0]
        except DigestMismatch as e:
            raise VerificationError(f"{e} (tampered in the registry?)") from None

    def blob(self, digest: str) -> bytes:
        """Raw bytes (a digest mismatch is returned, not raised: the caller reports it)."""
        buf = io.BytesIO()
        try:
            self.client.blob_download(self.repo, digest, buf)
        except DigestMismatch:
            return buf.getvalue() or b"\0"
        except NotFoundError:  # the client's HTTP 404
            raise MissingBlob(digest) from None
        return buf.getvalue()

    def reader(self) -> Callable[[str, bool], bytes]:
        def read(digest: str, is_manifest: bool = False) -> bytes:
            return self.manifest(digest) if is_manifest else self.blob(digest)

        return read


def _resolve(client: RegistryClient, ref: Reference) -> tuple[dict[str, Any], bytes]:
    data, media, digest = client.manifest_get(ref.path, ref.digest or ref.tag or "latest")
    return {"mediaType": media or mt.MANIFEST, "digest": digest, "size": len(data)}, data


def _manifest_list(data: bytes) -> list[dict[str, Any]]:
    try:
        doc = strict_json(data)
    except (ValueError, UnicodeDecodeError):
        return []
    return list(doc.get("manifests") or []) if isinstance(doc, dict) else []


def _upload(client: RegistryClient, repo: str, blobs: list[bytes]) -> None:
    for b in blobs:
        d = sha256_digest(b)
        if client.blob_head(repo, d):
            continue
        client.blob_upload(repo, d, len(b), partial(io.BytesIO, b))


def _referrer_manifest(layer: sm.SignatureLayer, subject: dict[str, Any]) -> bytes:
    return go_json(
        {
            "schemaVersion": 2,
            "mediaType": mt.MANIFEST,
            "artifactType": COSIGN_ARTIFACT_TYPE,
            "config": {"mediaType": mt.EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2,
                       "data": mt.EMPTY_DATA_B64},
            "layers": [layer.descriptor],
            "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"],
                        "size": subject["size"]},
        }
    )


def _list_in_tag_schema(client: RegistryClient, repo: str, subject: str, manifest: bytes) -> None:
    """Add ``manifest`` (a referrer of ``subject``) to the ``sha256-<hex>`` index of the OCI
    referrers tag schema, keeping the entries already there (last writer wins, as for the
    .sig tag)."""
    tag = referrers_tag(subject)
    got = client.manifest_get(repo, tag, missing_ok=True)
    entries = [e for e in (_manifest_list(got[0]) if got else []) if isinstance(e, dict)]
    digest = sha256_digest(manifest)
    if any(e.get("digest") == digest for e in entries):
        return
    entries.append({"mediaType": mt.MANIFEST, "digest": digest, "size": len(manifest),
                    "artifactType": COSIGN_ARTIFACT_TYPE})
    index = go_json({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": entries})
    client.manifest_put(repo, tag, index, mt.INDEX)


def sign_remote(
    ref: Reference,
    private_key: ec.EllipticCurvePrivateKey,
    options: RemoteOptions,
    *,
    recursive: bool = False,
    replace: bool = False,
    annotations: dict[str, str] | None = None,
    referrers: bool = False,
) -> SignResult:
    """Sign what ``ref`` resolves to in its registry; push the merged signature manifests."""
    options.policy.check(PUSH, ref)
    client = options.client(ref.domain)
    repo = ref.path
    desc, data = _resolve(client, ref)
    manifests = _manifest_list(data) if recursive else []
    digests = digests_to_sign(desc, manifests, recursive)
    layers = make_layers(private_key, ref.name, digests, annotations or {})
    signer = PublicKey(private_key.public_key(), "signing key")
    source = RegistrySource(client, repo)
    result = SignResult(f"{ref}", ref.name)
    subjects = {desc["digest"]: desc}
    for m in manifests:
        subjects.setdefault(m["digest"], {"mediaType": m.get("mediaType", mt.MANIFEST),
                                          "digest": m["digest"], "size": m.get("size", 0)})
    api = referrers and supports_referrers(client, repo)
    if referrers and not api:
        result.warnings.append(
            f"{client.host} has no OCI 1.1 referrers API: the referrer is listed in the "
            "referrers tag schema's sha256-<hex> index instead (as cosign and oras do); the "
            "sha256-<hex>.sig tag, which ig reads first, is written as always"
        )
    for d, layer in layers.items():
        tag = signature_tag(d)
        merged, added, prev_count = signed_layers(source, d, layer, signer, replace,
                                                  f"{source.where}:{tag}")
        if not added:  # already signed by this key: report the signature manifest there
            have = client.manifest_head(repo, tag)
            result.signed.append(Signed(d, tag, len(merged), False, 0, have.digest if have else ""))
            continue
        built = sm.build(merged)
        _upload(client, repo, [*built.payloads, built.config])
        client.manifest_put(repo, tag, built.manifest, mt.MANIFEST)
        result.signed.append(Signed(d, tag, len(merged), True, prev_count, built.digest))
        if referrers:
            _upload(client, repo, [b"{}"])
            rm = _referrer_manifest(layer, subjects[d])
            client.manifest_put(repo, sha256_digest(rm), rm, mt.MANIFEST)
            if not api:
                _list_in_tag_schema(client, repo, d, rm)
    result.warn_not_ig_compatible(f"{source.where}:")
    return result


def verify_remote(
    ref: Reference,
    keys: list[PublicKey],
    options: RemoteOptions,
    *,
    recursive: bool = False,
    ignore_identity: bool = False,
) -> VerifyResult:
    """Verify an image in its registry: signature(s) and the whole graph."""
    options.policy.check(PULL, ref)
    client = options.client(ref.domain)
    source = RegistrySource(client, ref.path)
    desc, _ = _resolve(client, ref)
    label = str(ref)
    manifests = check_graph(source.reader(), desc, label)
    identities = None if ignore_identity else {ref.name}
    result = VerifyResult(label, desc["digest"], source="registry")
    return verify_signatures(result, source, desc, manifests, recursive, keys, identities)


def fetch_signature_into_store(store: Store, ref: Reference, digests: list[str],
                               options: RemoteOptions) -> list[str]:
    """Copy missing ``sha256-<hex>.sig`` tags of ``digests`` from ``ref``'s repository into
    the local store (manifest, config, payloads; all digest-checked). Returns tags fetched."""
    local = StoreSource(store)
    missing = [d for d in digests if local.signature_descriptor(d) is None]
    if not missing:
        return []

    def readable(raw: bytes) -> bool:
        # one that is not would only fail later; verification reports it remotely
        try:
            sm.parse(raw, "")
        except sm.SignatureManifestError:
            return bool(_manifest_list(raw))  # the referrers tag schema's index
        return True

    return fetch_signatures(store, options.client(ref.domain), ref.path, missing, accept=readable)


__all__ = [
    "RegistrySource",
    "fetch_signature_into_store",
    "sign_remote",
    "verify_remote",
]
