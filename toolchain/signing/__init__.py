"""Cosign-compatible signing and verification of gadget images.

- :mod:`.keys`: ECDSA P-256 key pairs in cosign's files (encrypted private key PEM with
  scrypt + nacl secretbox; PKIX public key PEM), passphrases from the environment or a prompt.
- :mod:`.payload`: the "simple signing" JSON payload that names the signed digest.
- :mod:`.sigmanifest`: the ``sha256-<hex>.sig`` signature manifest (one layer per signature).
- :mod:`.bundle`: key-based Sigstore bundles (cosign v3's default format).
- :mod:`.verify`: signature checks with precise reasons for every rejection.
- :mod:`.local`: sign and verify images in the local store.
- :mod:`.remote`: sign and verify in a registry (signing sits above :mod:`..registry`).
- :mod:`.enforce`: the checks pull, import and run make when the policy names keys.

The tag names (``sha256-<hex>.sig``) are :mod:`..oci.sigtags`'s, re-exported here.
"""

from __future__ import annotations

from gadgetsmith.toolchain.oci.sigtags import is_signature_tag, referrers_tag, signature_tag, signature_tags

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
#: cosign's OCI 1.1 signature artifact type (referrers API)
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"

__all__ = [
    "COSIGN_ARTIFACT_TYPE",
    "SIGNATURE_ANNOTATION",
    "SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "is_signature_tag",
    "referrers_tag",
    "signature_tag",
    "signature_tags",
]
