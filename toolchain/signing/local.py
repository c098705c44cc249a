"""Sign and verify images in the local store (offline).

Signature manifests live in the store like ig keeps them: tagged with the bare tag
``sha256-<hex>.sig`` in ``index.json``. Writing one happens under the store lock and
re-reads the current signature manifest inside the lock, so concurrent signers accumulate
layers instead of losing each other's signatures.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.toolchain.errors import MissingBlob, UsageError, VerificationError
from gadgetsmith.toolchain.oci.store import Store, open_store
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing import signature_tag
from gadgetsmith.toolchain.signing.crypto import sign_bytes, verify_bytes
from gadgetsmith.toolchain.signing.keys import PublicKey
from gadgetsmith.toolchain.signing.payload import build_payload
from gadgetsmith.toolchain.signing.source import StoreSource
from gadgetsmith.toolchain.signing.verify import Verified, check_graph, verify_digest


# ------------------------------------------------------------------------------ identity
def repository_names(store: Store, ref: Reference | None, digest: str) -> set[str]:
    """Repository names an image is known by: the given name, else every local tag's."""
    if ref is not None:
        return {ref.name}
    names = set()
    for e in store.entries():
        if e.digest == digest:
            try:
                names.add(parse(e.reference).name)
            except InvalidReference:
                continue
    return names


def parse_annotations(items: Iterable[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise UsageError(f"annotation {item!r} is not key=value (e.g. -a ci.run=1234)")
        out[k.strip()] = v
    return out


# ------------------------------------------------------------------------------ signing
@dataclass
class Signed:
    digest: str
    tag: str
    layers: int
    added: bool
    replaced: int = 0
    manifest_digest: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "signatureTag": self.tag,
            "signatureManifest": self.manifest_digest,
            "layers": self.layers,
            "added": self.added,
            "replacedLayers": self.replaced,
            "igCompatible": sm.ig_compatible(self.layers),
        }


@dataclass
class SignResult:
    reference: str
    identity: str
    signed: list[Signed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "identity": self.identity,
            "signatures": [s.as_dict() for s in self.signed],
            "warnings": self.warnings,
        }

    def warn_not_ig_compatible(self, where: str = "") -> None:
        """Warn for each signature manifest that now holds more than one signature (ig
        refuses those); ``where`` prefixes the tag (``host/repo:``)."""
        for s in self.signed:
            if s.layers > 1:
                self.warnings.append(
                    f"{where}{s.tag} now holds {s.layers} signatures; ig only accepts a signature "
                    "manifest with exactly one: re-sign with --replace to keep just the new one"
                )


def digests_to_sign(
    index_desc: dict[str, Any], manifests: list[dict[str, Any]], recursive: bool
) -> list[str]:
    out = [index_desc["digest"]]
    if recursive:
        for m in manifests:
            if m["digest"] not in out:
                out.append(m["digest"])
    return out


def make_layers(
    private_key: ec.EllipticCurvePrivateKey, identity: str, digests: list[str], annotations: dict[str, str]
) -> dict[str, sm.SignatureLayer]:
    out = {}
    for d in digests:
        payload = build_payload(identity, d, annotations)
        sig = base64.b64encode(sign_bytes(private_key, payload)).decode()
        out[d] = sm.new_layer(payload, sig)
    return out


def merge_layers(
    existing: list[sm.SignatureLayer],
    new: sm.SignatureLayer,
    signer: PublicKey,
) -> tuple[list[sm.SignatureLayer], bool]:
    """(layers, added). A layer with the same payload already signed by the same key is
    kept instead of adding a duplicate (cosign does the same)."""
    for layer in existing:
        if layer.descriptor.get("digest") != new.descriptor["digest"]:
            continue
        try:
            sig = base64.b64decode(layer.signature_b64 or "", validate=True)
        except ValueError:
            continue
        if verify_bytes(signer, sig, layer.payload):
            return existing, False
    return [*existing, new], True


def existing_layers(source: Any, digest: str, label: str | None = None) -> list[sm.SignatureLayer]:
    """Current signature layers of ``digest`` in ``source`` (the local store, or a registry
    repository: anything with ``signature_manifest`` and ``blob``); strict, raises on damage.
    ``label`` names the signature manifest in messages (default: its tag)."""
    tag = signature_tag(digest)
    raw = source.signature_manifest(digest)
    if raw is None:
        return []
    label = label or tag
    try:
        descs = sm.parse(raw, label)
    except sm.SignatureManifestError as e:
        raise VerificationError(f"{e}: use --replace to overwrite it") from None
    out = []
    for d in descs:
        try:
            payload = source.blob(d["digest"])
        except MissingBlob:
            raise VerificationError(
                f"signature manifest {label}: payload blob {d['digest']} is missing: use --replace"
            ) from None
        out.append(sm.SignatureLayer(d, payload))
    return out


def signed_layers(
    source: Any,
    digest: str,
    new: sm.SignatureLayer,
    signer: PublicKey,
    replace: bool,
    label: str | None = None,
) -> tuple[list[sm.SignatureLayer], bool, int]:
    """What the signature manifest of ``digest`` in ``source`` (store or registry) holds once
    signed with ``new``: (layers, added, signatures dropped). Without ``replace``: the
    existing layers (read strictly; damage is an error naming --replace) plus ``new``
    unless the same key signed the same payload already. With it: just ``new``, whatever
    was there (a damaged manifest counts as one signature dropped)."""
    if not replace:
        layers, added = merge_layers(existing_layers(source, digest, label), new, signer)
        return layers, added, 0
    try:
        raw = source.signature_manifest(digest)
        dropped = 0 if raw is None else len(sm.parse(raw, label or signature_tag(digest)))
    except (sm.SignatureManifestError, MissingBlob, VerificationError):
        dropped = 1
    return [new], True, dropped


def store_signature_layers(
    store: Store,
    new_layers: dict[str, sm.SignatureLayer],
    signer: PublicKey,
    replace: bool,
) -> list[Signed]:
    """Merge ``new_layers`` (digest -> layer) into the store's signature manifests, atomically
    under the store lock."""
    source = StoreSource(store)
    results = []
    with store.lock():
        gc = False
        for digest, layer in new_layers.items():
            tag = signature_tag(digest)
            layers, added, replaced_count = signed_layers(source, digest, layer, signer, replace)
            if not added:
                prev = source.signature_descriptor(digest)
                results.append(Signed(digest, tag, len(layers), False, 0, prev["digest"] if prev else ""))
                continue
            built = sm.build(layers)
            for blob in built.blobs():
                store.put_blob(blob)
            previous = store.set_tag(tag, built.descriptor)
            gc = gc or bool(previous)
            results.append(Signed(digest, tag, len(layers), True, replaced_count, built.digest))
        if gc:
            store.gc_locked()
    return results


def sign_local(
    store_path: Path | None,
    text: str,
    private_key: ec.EllipticCurvePrivateKey,
    *,
    recursive: bool = False,
    replace: bool = False,
    annotations: dict[str, str] | None = None,
    identity: str | None = None,
    resolved: tuple[Reference | None, dict[str, Any]] | None = None,
) -> SignResult:
    """Sign a local image. ``identity`` (a repository name) overrides the one derived from
    ``text``, e.g. the destination of a push under another name. ``resolved``: the
    (reference, descriptor) the caller already looked up."""
    store = open_store(store_path)
    ref, desc = resolved if resolved is not None else store.lookup(text)
    names = {identity} if identity else repository_names(store, ref, desc["digest"])
    if len(names) != 1:
        if not names:
            raise UsageError(
                f"{text}: image has no name; the signature names the repository: "
                "give REPOSITORY:TAG or tag it first ('gadget tag')"
            )
        raise UsageError(
            f"{text}: digest is known under several repositories ({', '.join(sorted(names))}): "
            "give REPOSITORY@DIGEST to choose the one the signature names"
        )
    identity = next(iter(names))
    label = str(ref) if ref else text
    manifests = check_graph(StoreSource(store).reader(), desc, label)
    digests = digests_to_sign(desc, manifests, recursive)
    layers = make_layers(private_key, identity, digests, annotations or {})
    signer = PublicKey(private_key.public_key(), "signing key")
    result = SignResult(label, identity, store_signature_layers(store, layers, signer, replace))
    result.warn_not_ig_compatible()
    return result


# ------------------------------------------------------------------------------ verification
@dataclass
class VerifyResult:
    reference: str
    digest: str
    verified: list[Verified] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source: str = "local"

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "source": self.source,
            "verified": [v.as_dict() for v in self.verified],
            "warnings": self.warnings,
        }


def verify_in_store(
    store: Store,
    ref: Reference | None,
    desc: dict[str, Any],
    keys: list[PublicKey],
    *,
    recursive: bool = False,
    ignore_identity: bool = False,
    label: str | None = None,
    manifests: list[dict[str, Any]] | None = None,
    identities: set[str] | None = None,
) -> VerifyResult:
    """``manifests``: what :func:`~.verify.check_graph` returned for ``desc`` when the caller
    already checked the graph (it is not read and hashed again). ``identities``: the
    repository names a signature may name (default: the image's own names)."""
    label = label or (str(ref) if ref else desc["digest"])
    if ignore_identity:
        identities = None
    elif identities is None:
        identities = repository_names(store, ref, desc["digest"])
        if not identities:
            raise UsageError(
                f"{label}: image has no name to check the signed identity against: "
                "give REPOSITORY:TAG, or --ignore-identity"
            )
    source = StoreSource(store)
    if manifests is None:
        manifests = check_graph(source.reader(), desc, label)
    result = VerifyResult(label, desc["digest"])
    return verify_signatures(result, source, desc, manifests, recursive, keys, identities)


def verify_signatures(
    result: VerifyResult,
    source: Any,
    desc: dict[str, Any],
    manifests: list[dict[str, Any]],
    recursive: bool,
    keys: list[PublicKey],
    identities: set[str] | None,
) -> VerifyResult:
    """Verify the signature of the index (and with ``recursive`` of each manifest) from
    ``source`` (store or registry) into ``result``; warn where ig would refuse it."""
    for d in digests_to_sign(desc, manifests, recursive):
        result.verified.append(verify_digest(source, d, keys, identities, result.reference))
    for v in result.verified:
        if not sm.ig_compatible(v.layers):
            result.warnings.append(
                f"{signature_tag(v.digest)} holds {v.layers} signatures: ig accepts only a signature "
                "manifest with exactly one layer (re-sign with --replace)"
            )
    return result


def verify_local(
    store_path: Path | None,
    text: str,
    keys: list[PublicKey],
    *,
    recursive: bool = False,
    ignore_identity: bool = False,
) -> VerifyResult:
    store = open_store(store_path)
    ref, desc = store.lookup(text)
    return verify_in_store(store, ref, desc, keys, recursive=recursive, ignore_identity=ignore_identity)
