"""Image references, normalised the way Inspektor Gadget does it.

``trace_exec``          -> ``ghcr.io/inspektor-gadget/gadget/trace_exec:latest``
``myorg/gadget/foo``    -> ``ghcr.io/myorg/gadget/foo:latest``
``localhost:5000/x:v1`` -> unchanged

The full normalised string is what the local store records as
``org.opencontainers.image.ref.name``, so stores and export tars interoperate with ig.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gadgetsmith.runtime.errors import InvalidReference

DEFAULT_DOMAIN = "ghcr.io"
OFFICIAL_PREFIX = "inspektor-gadget/gadget/"
DEFAULT_TAG = "latest"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Repository name including the registry domain."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """Repository path without the domain (what a registry API calls the name)."""
        return self.path

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def short_name(self) -> str:
        """Name as `gadget list` shows it: the official prefix is dropped."""
        full = self.name
        official = f"{DEFAULT_DOMAIN}/{OFFICIAL_PREFIX}"
        return full[len(official):] if full.startswith(official) else full

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if (
        not sep
        or ("." not in first and ":" not in first and first != "localhost" and first == first.lower())
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; adds ``:latest`` when there is no tag or digest."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference("empty image reference")
    if text != text.strip():
        raise InvalidReference(f"reference {text!r} has leading or trailing spaces: remove them "
                               "(a quoting mistake?)")
    if "://" in text:
        raise InvalidReference(
            f"invalid reference {text!r}: drop the URL scheme (write host/repo:tag)"
        )
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    tag = None
    # a tag is after the last ':' that follows the last '/'
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in reference")
    domain, path = _split_domain(text)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry domain {domain!r} in reference {text!r}")
    if not _PATH_RE.match(path):
        raise InvalidReference(
            f"invalid repository name {path!r}: use lowercase letters, digits and . _ - /"
        )
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference("repository name longer than 255 characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def normalize(text: str) -> str:
    """The full normalised reference string (IG's local-store tag)."""
    return str(parse(text))


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


__all__ = ["DEFAULT_DOMAIN", "DEFAULT_TAG", "OFFICIAL_PREFIX", "InvalidReference", "Reference",
           "is_digest", "normalize", "parse"]
