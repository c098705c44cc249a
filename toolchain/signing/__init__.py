"""Cosign-compatible signing and verification of gadget images.

- :mod:`.keys`: ECDSA P-256 key pairs in cosign's files (encrypted private key PEM with
  scrypt + nacl secretbox; PKIX public key PEM), passphrases from the environment or a prompt.
- :mod:`.payload`: the "simple signing" JSON payload that names the signed digest.
- :mod:`.sigmanifest`: the ``sha256-<hex>.sig`` signature manifest (one layer per signature).
- :mod:`.verify`: signature checks with precise reasons for every rejection.
- :mod:`.local`: sign and verify images in the local store.

Nothing here imports the registry client; remote signing builds on these pieces.
"""

from __future__ import annotations

import re

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"
#: cosign's OCI 1.1 signature artifact type (referrers API)
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"

_SIG_TAG_RE = re.compile(r"^sha256-[0-9a-f]{64}(\.sig|\.att|\.sbom)?$")


def signature_tag(digest: str) -> str:
    """The cosign tag of the signature manifest for ``digest``: ``sha256-<hex>.sig``."""
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}.sig"


def is_signature_tag(tag: str) -> bool:
    """True for cosign's bare tags (``sha256-<hex>.sig`` etc.), which are not images."""
    return bool(_SIG_TAG_RE.match(tag))


__all__ = [
    "COSIGN_ARTIFACT_TYPE",
    "SIGNATURE_ANNOTATION",
    "SIGNATURE_TYPE",
    "SIMPLESIGNING_MEDIA_TYPE",
    "is_signature_tag",
    "signature_tag",
]
