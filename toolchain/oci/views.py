"""Read-side views of the local store for `gadget list` and `gadget inspect`."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LayoutError
from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.oci.sigtags import is_signature_tag
from gadgetsmith.toolchain.oci.store import Store, StoreError, open_store


def _ago(created: str | None, now: _dt.datetime | None = None) -> str:
    if not created:
        return ""
    try:
        t = _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created
    now = now or _dt.datetime.now(_dt.UTC)
    secs = int((now - t).total_seconds())
    if secs < 0:
        return "in the future"
    for unit, size in (("year", 31536000), ("month", 2592000), ("week", 604800), ("day", 86400),
                       ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{secs} second{'s' if secs != 1 else ''} ago"


def _created_inside(store: Store, digest: str) -> str | None:
    """The creation time an image carries inside (as ig reads it): an index entry's or a
    manifest's ``org.opencontainers.image.created``, this machine's architecture first. A
    pulled or imported image has no annotations on its store descriptor."""
    try:
        doc = json.loads(store.read_blob(digest, verify=False))
    except (LayoutError, StoreError, ValueError, OSError):
        return None
    if not isinstance(doc, dict):
        return None
    here = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    entries = [m for m in doc.get("manifests") or [] if isinstance(m, dict)]
    entries.sort(key=lambda m: (m.get("platform") or {}).get("architecture") != here)
    for m in [doc, *entries]:
        created = (m.get("annotations") or {}).get(mt.CREATED)
        if isinstance(created, str) and created:
            return created
    return None


def list_images(store_path: Path | None) -> list[dict[str, Any]]:
    store = open_store(store_path)
    rows = []
    for e in store.images():
        if is_signature_tag(e.reference):
            continue  # cosign signature manifests (sha256-<hex>.sig) are not images
        try:
            ref = parse(e.reference)
            repo, tag = ref.short_name(), ref.tag or ""
        except InvalidReference:
            repo, tag = e.reference, ""
        created = e.annotations.get(mt.CREATED) or _created_inside(store, e.digest)
        rows.append(
            {
                "reference": e.reference,
                "repository": repo,
                "tag": tag,
                "digest": e.digest,
                "created": created or "",
                "created_ago": _ago(created),
            }
        )
    rows.sort(key=lambda r: (r["repository"], r["tag"]))
    return rows + _untagged(store, {r["digest"] for r in rows})


def _untagged(store: Store, tagged: set[str]) -> list[dict[str, Any]]:
    """Images kept without a name (`gadget build` without -t), as docker lists them:
    ``<none>`` for repository and tag, found by digest."""
    rows = []
    for desc in store.read_index()["manifests"]:
        digest = desc.get("digest", "")
        if (desc.get("annotations") or {}).get(mt.REF_NAME) or digest in tagged:
            continue
        tagged.add(digest)
        created = (desc.get("annotations") or {}).get(mt.CREATED) or _created_inside(store, digest)
        rows.append({"reference": "", "repository": "<none>", "tag": "<none>", "digest": digest,
                     "created": created or "", "created_ago": _ago(created)})
    return rows


def metadata_summary(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Data sources and params as declared in gadget.yaml."""
    out: dict[str, Any] = {"datasources": [], "params": []}
    if not isinstance(meta, dict):
        return out
    ds = meta.get("datasources") or {}
    if isinstance(ds, dict):
        for name, d in ds.items():
            fields = (d or {}).get("fields") if isinstance(d, dict) else None
            flist = []
            if isinstance(fields, dict):
                for fname, f in fields.items():
                    ann = (f or {}).get("annotations") if isinstance(f, dict) else None
                    desc = (ann or {}).get("description", "") if isinstance(ann, dict) else ""
                    flist.append({"name": str(fname), "description": str(desc)})
            out["datasources"].append({"name": str(name), "fields": flist})
    params = meta.get("params") or {}
    legacy = meta.get("ebpfParams") or {}
    groups = dict(params) if isinstance(params, dict) else {}
    if isinstance(legacy, dict) and legacy and "ebpf" not in groups:
        groups["ebpf"] = legacy
    for op, items in groups.items():
        if not isinstance(items, dict):
            continue
        for var, p in items.items():
            p = p if isinstance(p, dict) else {}
            out["params"].append(
                {
                    "operator": str(op),
                    "name": str(var),
                    "key": str(p.get("key", var)),
                    "default": "" if p.get("defaultValue") is None else str(p.get("defaultValue")),
                    "description": str(p.get("description", "") or ""),
                }
            )
    return out
