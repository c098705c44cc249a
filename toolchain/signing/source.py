"""Signatures in the local store, and which of them a push carries (no cryptography here).

* :class:`StoreSource`: the store as a :class:`~.verify.SignatureSource` (``sha256-<hex>.sig``
  manifests and their blobs, as ig keeps them, and the ``sha256-<hex>`` referrers indexes);
* :func:`signatures_for`: the signature view `gadget push` sends a destination.

`gadget push` imports this module; the signer and verifier (and cryptography) only run
when a command signs or verifies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LayoutError, sha256_digest
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.errors import MissingBlob, VerificationError
from gadgetsmith.toolchain.oci.sigtags import referrers_tag, signature_tag
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.payload import PayloadError, parse_payload

#: maps (tag, local signature manifest or None) to (manifest to send, new blobs by digest),
#: or None to send the local one as it is
SignatureView = Callable[[str, bytes | None], tuple[bytes, dict[str, bytes]] | None]


class StoreSource:
    """:class:`~.verify.SignatureSource` over the local store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.where = f"the local store {store.root}"

    def tagged(self, tag: str) -> dict[str, Any] | None:
        """The store's descriptor tagged ``tag`` (a bare signature tag), or None."""
        for d in self.store.read_index()["manifests"]:
            if (d.get("annotations") or {}).get(mt.REF_NAME) == tag:
                return dict(d)
        return None

    def signature_descriptor(self, digest: str) -> dict[str, Any] | None:
        return self.tagged(signature_tag(digest))

    def signature_manifest(self, digest: str) -> bytes | None:
        desc = self.signature_descriptor(digest)
        if desc is None:
            return None
        raw = self.blob(desc["digest"])
        if sha256_digest(raw) != desc["digest"]:
            raise VerificationError(
                f"signature manifest {signature_tag(digest)} in {self.where} does not match its "
                f"digest {desc['digest']} (tampered or corrupt)"
            )
        return raw

    def blob(self, digest: str) -> bytes:
        try:
            return self.store.read_blob(digest, verify=False)
        except LayoutError:
            raise MissingBlob(digest) from None

    def referrers(self, digest: str) -> list[bytes]:
        """Manifests listed by the store's ``sha256-<hex>`` index (the referrers tag schema,
        as pulled), each checked against its digest."""
        desc = self.tagged(referrers_tag(digest))
        out: list[bytes] = []
        if desc is None:
            return out
        try:
            index = json.loads(self.blob(desc["digest"]))
        except (MissingBlob, ValueError):
            return out
        for e in index.get("manifests") or [] if isinstance(index, dict) else []:
            try:
                data = self.blob(e["digest"])
            except (MissingBlob, KeyError, TypeError):
                continue
            if sha256_digest(data) == e["digest"]:
                out.append(data)
        return out

    def reader(self) -> Callable[[str, bool], bytes]:
        """``read(digest, is_manifest)`` for :func:`~.verify.check_graph` (unchecked bytes)."""
        def read(digest: str, is_manifest: bool = False) -> bytes:
            return self.blob(digest)

        return read


def naming(layers: list[sm.SignatureLayer], name: str) -> list[sm.SignatureLayer]:
    """The layers whose payload names the repository ``name``."""
    keep = []
    for layer in layers:
        try:
            identity = parse_payload(layer.payload).identity
            if identity and parse(identity, default_tag=False).name == name:
                keep.append(layer)
        except (PayloadError, InvalidReference):
            continue
    return keep


def local_layers(source: StoreSource, raw: bytes | None) -> list[sm.SignatureLayer] | None:
    """The layers of a local signature manifest (None when it cannot be read whole)."""
    if raw is None:
        return []
    try:
        return [sm.SignatureLayer(d, source.blob(d["digest"])) for d in sm.parse(raw, "")]
    except (sm.SignatureManifestError, MissingBlob):
        return None


def signatures_for(store: Store, name: str,
                   prepared: dict[str, list[sm.SignatureLayer]] | None = None) -> SignatureView:
    """What `gadget push` sends as the signature manifest of a local ``.sig`` to the
    repository ``name``: the store keeps one ``.sig`` per digest with a layer for every
    name the image was signed under (`gadget sign` under several names), and ig accepts
    exactly one layer. So the destination gets only the layers whose payload names it.
    ``prepared`` (tag -> layers, `push --sign`): what to send under those tags instead,
    made for this push and not in the store.

    The returned function maps (tag, the local manifest's bytes or None) to (manifest, new
    blobs by digest), or None to push the local one unchanged: when every layer names
    ``name``, or none does (a signature made under the local name, pushed elsewhere: sent
    as it is, and --ignore-identity / a policy's ``ignoreIdentity`` accepts it there)."""
    source = StoreSource(store)

    def select(tag: str, raw: bytes | None) -> tuple[bytes, dict[str, bytes]] | None:
        if prepared and tag in prepared:
            built = sm.build(prepared[tag])
            extra = {sha256_digest(b): b for b in (*built.payloads, built.config)}
            return built.manifest, extra
        layers = local_layers(source, raw)
        if not layers:
            return None
        keep = naming(layers, name)
        if not keep or len(keep) == len(layers):
            return None
        built = sm.build(keep)
        return built.manifest, {sha256_digest(built.config): built.config}

    return select
