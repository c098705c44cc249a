"""Read access to an OCI image-layout directory (the local gadget store).

Writing lives in :mod:`gadgetsmith.toolchain.oci.store`; the runtime only needs to resolve a
reference and read blobs, so this module has no locking: writers replace ``index.json``
atomically, and blobs are immutable once they have their final name.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.errors import InvalidReference, LayoutError, UnknownReference
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.reference import Reference, is_digest, parse

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"


def default_store_path() -> Path:
    env = os.environ.get("GADGETSMITH_STORE")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "gadgetsmith" / "store"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ImageEntry:
    """One tagged entry of the store's index.json."""

    reference: str  # full normalised reference (ref.name)
    descriptor: dict[str, Any] = field(repr=False)

    @property
    def digest(self) -> str:
        return str(self.descriptor["digest"])

    @property
    def media_type(self) -> str:
        return str(self.descriptor.get("mediaType", ""))

    @property
    def annotations(self) -> dict[str, str]:
        return self.descriptor.get("annotations") or {}


class Layout:
    """Read-only view of an OCI layout directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- validity ---------------------------------------------------------------------
    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    def exists(self) -> bool:
        return (self.root / LAYOUT_FILE).is_file()

    def check(self) -> None:
        """Raise :class:`LayoutError` unless ``root`` holds a valid OCI layout."""
        lf = self.root / LAYOUT_FILE
        if not lf.is_file():
            raise LayoutError(
                f"{self.root} is not an OCI image layout (no {LAYOUT_FILE} file): "
                "point --store / GADGETSMITH_STORE at an empty directory or an OCI layout"
            )
        try:
            version = json.loads(lf.read_text()).get("imageLayoutVersion")
        except (OSError, ValueError, AttributeError) as e:
            raise LayoutError(f"{lf}: unreadable OCI layout file ({e})") from None
        if version != LAYOUT_VERSION:
            raise LayoutError(f"{lf}: unsupported imageLayoutVersion {version!r} (want 1.0.0)")

    # -- index ------------------------------------------------------------------------
    def read_index(self) -> dict[str, Any]:
        path = self.root / INDEX_FILE
        if not path.exists():
            return {"schemaVersion": 2, "manifests": []}
        try:
            data = json.loads(path.read_bytes())
        except ValueError as e:
            raise LayoutError(f"{path}: the store's index is not valid JSON ({e}): it was changed "
                              "or damaged outside gadget; restore it, or move the store away and "
                              "build or pull the images again") from None
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise LayoutError(f"{path}: the store's index is not an OCI image index: restore it, "
                              "or move the store away and build or pull the images again")
        data.setdefault("manifests", [])
        return data

    def entries(self) -> list[ImageEntry]:
        """Tagged images, in index order."""
        out = []
        for desc in self.read_index()["manifests"]:
            ref = (desc.get("annotations") or {}).get(mt.REF_NAME)
            if ref:
                out.append(ImageEntry(ref, desc))
        return out

    def resolve(self, text: str) -> tuple[Reference | None, dict[str, Any]]:
        """Find the descriptor for a reference, ``name@digest`` or bare ``sha256:…`` digest."""
        entries = self.entries()
        if is_digest(text) or (len(text) >= 4 and all(c in "0123456789abcdef" for c in text)):
            want = text if text.startswith("sha256:") else None
            for desc in self.read_index()["manifests"]:
                d = desc["digest"]
                if d == want or (want is None and d[len("sha256:"):].startswith(text)):
                    return None, desc
            if want is not None and self.has_blob(want):
                return None, self.descriptor_for_blob(want)
            raise UnknownReference(text)
        try:
            ref = parse(text)
        except InvalidReference:
            raise
        if ref.digest:
            for e in entries:
                if e.digest == ref.digest:
                    return ref, e.descriptor
            if self.has_blob(ref.digest):
                return ref, self.descriptor_for_blob(ref.digest)
            raise UnknownReference(str(ref))
        full = str(ref)
        for e in entries:
            if e.reference == full:
                return ref, e.descriptor
        raise UnknownReference(full)

    def descriptor_for_blob(self, digest: str) -> dict[str, Any]:
        data = self.read_blob(digest)
        try:
            mt_ = json.loads(data).get("mediaType") or mt.MANIFEST
        except (ValueError, AttributeError):
            mt_ = "application/octet-stream"
        return {"mediaType": mt_, "digest": digest, "size": len(data)}

    # -- blobs ------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise LayoutError(f"unsupported digest {digest!r}")
        return self.root / "blobs" / algo / hexd

    def has_blob(self, digest: str) -> bool:
        try:
            return self.blob_path(digest).is_file()
        except LayoutError:
            return False

    def read_blob(self, digest: str, verify: bool = True) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise LayoutError(f"blob {digest} is missing from {self.root}") from None
        if verify and sha256_digest(data) != digest:
            raise LayoutError(f"blob {digest} in {self.root} is corrupt: its content does not match "
                              "its digest (changed on disk): remove the image ('gadget rm REF') "
                              "and build or pull it again")
        return data

    def read_json(self, digest: str) -> dict[str, Any]:
        doc = json.loads(self.read_blob(digest))
        if not isinstance(doc, dict):
            raise LayoutError(f"blob {digest} in {self.root} is not a JSON object")
        return doc

    # -- graph ------------------------------------------------------------------------
    def children(self, desc: dict[str, Any]) -> list[dict[str, Any]]:
        """Descriptors directly referenced by the manifest/index ``desc`` points at."""
        media = desc.get("mediaType")
        if media not in (mt.INDEX, mt.MANIFEST, None):
            return []
        try:
            doc = self.read_json(desc["digest"])
        except (LayoutError, ValueError):
            return []
        out: list[dict[str, Any]] = []
        if "manifests" in doc:
            out += doc.get("manifests") or []
        if "config" in doc:
            out.append(doc["config"])
            out += doc.get("layers") or []
        if doc.get("subject"):
            out.append(doc["subject"])
        return out

    def walk(self, desc: dict[str, Any]) -> list[dict[str, Any]]:
        """``desc`` and every descriptor reachable from it (each digest once)."""
        seen: set[str] = set()
        order: list[dict[str, Any]] = []
        stack = [desc]
        while stack:
            d = stack.pop()
            if d["digest"] in seen:
                continue
            seen.add(d["digest"])
            order.append(d)
            if d.get("mediaType") in (mt.INDEX, mt.MANIFEST) or (
                d.get("mediaType") is None and self.has_blob(d["digest"])
            ):
                stack.extend(self.children(d))
        return order

    def manifest_for_arch(self, index_desc: dict[str, Any], arch: str) -> dict[str, Any]:
        """The first per-arch manifest for ``arch`` (what ig's runtime picks)."""
        if index_desc.get("mediaType") != mt.INDEX:
            raise LayoutError(f"{index_desc['digest']} is not an image index")
        index = self.read_json(index_desc["digest"])
        for m in index.get("manifests") or []:
            if isinstance(m, dict) and (m.get("platform") or {}).get("architecture") == arch:
                return m
        raise LayoutError(f"image {index_desc['digest']} has no manifest for architecture {arch}")


__all__ = ["INDEX_FILE", "LAYOUT_FILE", "LAYOUT_VERSION", "ImageEntry", "Layout", "LayoutError",
           "UnknownReference", "default_store_path", "sha256_digest"]
