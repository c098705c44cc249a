"""cosign's signature tags: ``sha256-<hex>.sig`` next to the image they sign.

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


def is_signature_tag(tag: str) -> bool:
    """True for cosign's bare tags (``sha256-<hex>.sig`` etc.), which are not images."""
    return bool(_SIG_TAG_RE.match(tag))
