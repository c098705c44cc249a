"""Signatures in the local store, and which of them a push carries (no cryptography here).

* :class:`StoreSource`: the store as a :class:`~.verify.SignatureSource` (``sha256-<hex>.sig``
  manifests and their blobs, as ig keeps them);
* :func:`signatures_for`: the signature view `gadget push` sends a destination.

`gadget push` imports this module; the signer and verifier (and cryptography) only run
when a command signs or verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LayoutError, sha256_digest
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.errors import MissingBlob, VerificationError
from gadgetsmith.toolchain.oci.sigtags import signature_tag
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing.payload import PayloadError, parse_payload

#: maps a local signature manifest to (manifest to send, new blobs by digest), or None
SignatureView = Callable[[bytes], tuple[bytes, dict[str, bytes]] | None]


class StoreSource:
    """:class:`~.verify.SignatureSource` over the local store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.where = f"the local store {store.root}"

    def signature_descriptor(self, digest: str) -> dict[str, Any] | None:
        tag = signature_tag(digest)
        for d in self.store.read_index()["manifests"]:
            if (d.get("annotations") or {}).get(mt.REF_NAME) == tag:
                return d
        return None

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

    def reader(self) -> Callable[[str, bool], bytes]:
        """``read(digest, is_manifest)`` for :func:`~.verify.check_graph` (unchecked bytes)."""
        return lambda d, is_manifest=False: self.blob(d)


def signatures_for(store: Store, name: str) -> SignatureView:
    """What `gadget push` sends as the signature manifest of a local ``.sig`` to the
    repository ``name``: the store keeps one ``.sig`` per digest with a layer for every
    name the image was signed under (push --sign to staging, then to prod), and ig accepts
    exactly one layer. So the destination gets only the layers whose payload names it.

    The returned function maps the local manifest's bytes to (manifest, new blobs by
    digest), or None to push it unchanged: when every layer names ``name``, or none does
    (a signature made under the local name, pushed elsewhere: sent as it is, and
    --ignore-identity / a policy's ``ignoreIdentity`` accepts it there)."""
    source = StoreSource(store)

    def select(raw: bytes) -> tuple[bytes, dict[str, bytes]] | None:
        try:
            descs = sm.parse(raw, "")
            layers = [sm.SignatureLayer(d, source.blob(d["digest"])) for d in descs]
        except (sm.SignatureManifestError, MissingBlob):
            return None
        keep = []
        for layer in layers:
            try:
                identity = parse_payload(layer.payload).identity
                if identity and parse(identity, default_tag=False).name == name:
                    keep.append(layer)
            except (PayloadError, InvalidReference):
                continue
        if not keep or len(keep) == len(layers):
            return None
        built = sm.build(keep)
        return built.manifest, {sha256_digest(built.config): built.config}

    return select
