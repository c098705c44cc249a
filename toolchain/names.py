"""Names the toolchain writes to (tags, push and copy destinations, build -t).

Its own small module: the store checks every tag it writes, and every command opens the
store, so this must not bring the policy machinery along."""

from __future__ import annotations

import re

from gadgetsmith.toolchain.errors import UsageError

_IPV4_RE = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}$")


def check_names_repository(text: str, what: str = "destination") -> None:
    """Refuse a name to write to (push, copy, tag, build -t) that is only a registry
    address (``127.0.0.1:5000``, ``localhost:5000``, ``reg.corp:5000``): it would become a
    repository of that name under ghcr.io/inspektor-gadget/gadget/."""
    if "/" in text or "@" in text:
        return
    name, _, tag = text.partition(":")
    if name == "localhost" or _IPV4_RE.match(name) or ("." in name and tag.isdigit()):
        raise UsageError(f"{what} {text!r} names a registry but no repository: write "
                         f"{text}/REPOSITORY[:TAG] (e.g. {text}/trace_open:v1)")
