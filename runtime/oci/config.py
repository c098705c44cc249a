"""An image's config blob (its gadget.yaml) as a dict, parsed once per blob.

The config is YAML, read with ruamel.yaml (the project's one YAML library; safe loader,
YAML 1.2, as the toolchain reads gadget.yaml). Parsing costs an import of 25 ms and more,
so the result is kept as JSON in a cache named after the blob's digest
(``$XDG_CACHE_HOME/gadgetsmith/config/``, by default ``~/.cache/...``): the next run of the
same image reads that instead. A digest names one content, so an entry never goes stale;
a document JSON cannot hold exactly (dates, keys that are not strings) is not cached. A
cache that cannot be written (read-only home) only means parsing every time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.errors import LayoutError

#: the form of a cache entry (bumped if the parser or the stored form changes)
CACHE_FORMAT = "v1"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith" / "config"


def parse_config(data: bytes) -> dict[str, Any]:
    """gadget.yaml text as a dict ({} for an empty document)."""
    import ruamel.yaml  # heavy: only when no cache entry answers

    try:
        doc = ruamel.yaml.YAML(typ="safe", pure=True).load(data)
    except ruamel.yaml.YAMLError as e:
        raise LayoutError("the image's gadget.yaml (its config blob) is not valid YAML: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise LayoutError("the image's gadget.yaml (its config blob) is not a mapping")
    return doc


def _entry(digest: str) -> Path | None:
    if not _DIGEST.match(digest):
        return None
    return cache_dir() / f"{digest[len('sha256:'):]}.{CACHE_FORMAT}.json"


def cached_config(digest: str) -> dict[str, Any] | None:
    """The cached parse of the config blob ``digest``, or None."""
    path = _entry(digest)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def store_config(digest: str, doc: dict[str, Any]) -> None:
    """Keep ``doc`` (the parse of blob ``digest``) when JSON holds it exactly; atomic."""
    path = _entry(digest)
    if path is None:
        return
    try:
        text = json.dumps(doc, separators=(",", ":"))
        if json.loads(text) != doc:
            return  # e.g. an integer key, which JSON would turn into a string
    except (TypeError, ValueError):
        return  # a date, a set: not JSON
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_config(digest: str, read_blob: Callable[[str], bytes]) -> dict[str, Any]:
    """The config blob ``digest`` parsed: from the cache, else ``read_blob(digest)`` parsed
    (and cached)."""
    doc = cached_config(digest)
    if doc is None:
        doc = parse_config(read_blob(digest))
        store_config(digest, doc)
    return doc


__all__ = ["CACHE_FORMAT", "cache_dir", "cached_config", "parse_config", "read_config",
           "store_config"]
