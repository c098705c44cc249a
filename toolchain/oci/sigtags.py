"""cosign's signature tags: ``sha256-<hex>.sig`` next to the image they sign, and the
OCI 1.1 referrers tag schema's ``sha256-<hex>`` index (cosign's newer formats).

The store, archives and registry transfers carry these tags along with an image (and drop
them with it); they are not images themselves. Signing writes and reads what they point to
(:mod:`gadgetsmith.toolchain.signing`).
"""

from __future__ import annotations

import re

_SIG_TAG_RE = re.compile(r"^sha256-[0-9a-f]{64}(\.sig|\.att|\.sbom)?$")


def signature_tag(digest: str) -> str:
    """The cosign tag of the signature manifest for ``digest``: ``sha256-<hex>.sig``."""
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}.sig"


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema's tag for ``digest``: ``sha256-<hex>``, an index of
    the manifests whose ``subject`` is ``digest`` (cosign's OCI 1.1 signatures and Sigstore
    bundles on registries without the referrers API)."""
    algo, _, hexd = digest.partition(":")
    return f"{algo}-{hexd}"


def signature_tags(digest: str) -> list[str]:
    """The tags that may hold signatures of ``digest``, in the order ig reads them."""
    return [signature_tag(digest), referrers_tag(digest)]


def is_signature_tag(tag: str) -> bool:
    """True for cosign's bare tags (``sha256-<hex>.sig`` etc.), which are not images."""
    return bool(_SIG_TAG_RE.match(tag))
