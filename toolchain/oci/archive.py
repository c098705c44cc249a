"""`gadget export` / `gadget import`: an OCI layout in a plain tar, like `ig image export`.

Export writes ``blobs/sha256/<hex>`` (lexical order, each hashed as it is copied: a blob
changed on disk fails the export and no tar is left), ``index.json`` (manifests sorted by
digest, each image tagged with its full normalised reference, signature tags bare) and
``oci-layout``; regular files only, mtime 0, uid/gid 0, mode 0644, so the same images
always give the same bytes. Each image's ``sha256-<hex>.sig`` tag comes along.

Import reads such a tar (ig's too) without trusting it: only regular files named
``oci-layout``, ``index.json`` or ``blobs/sha256/<64 hex>`` (directory entries are
ignored); absolute names, ``..``, links, devices, duplicates, oversized members, blobs
whose content does not match their name and images with missing blobs are refused.
Everything is staged and checked first; the store changes only at the end, under its
lock, and only if the whole archive is good.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LAYOUT_VERSION
from gadgetsmith.runtime.oci.reference import InvalidReference, is_digest, parse
from gadgetsmith.toolchain.errors import GadgetError, IntegrityError, MissingBlob, UsageError
from gadgetsmith.toolchain.fsutil import atomic_writer
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.sigtags import is_signature_tag, signature_tags
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.policy import IMPORT, Policy

DEFAULT_MAX_MEMBER = 2 * 1024**3
MAX_INDEX = 16 * 1024**2
_BLOB_RE = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


class ArchiveError(UsageError):
    """The archive is not an acceptable OCI layout tar (nothing was imported)."""


# ------------------------------------------------------------------------------ export
def export_images(store: Store, images: list[str], dest: Path) -> dict[str, Any]:
    """Write ``images`` (references or digests) with their signatures to ``dest``."""
    entries: dict[tuple[str, str], dict[str, Any]] = {}
    blobs: set[str] = set()
    tags = {e.reference: e for e in store.entries()}
    refs_out = []
    for text in images:
        ref, desc = store.lookup(text)
        name = str(ref) if ref is not None else None
        if name is None:
            name = next((e.reference for e in tags.values() if e.digest == desc["digest"]
                         and not is_signature_tag(e.reference)), desc["digest"])
        clean = {k: v for k, v in desc.items() if k != "annotations"}
        ann = {k: v for k, v in (desc.get("annotations") or {}).items() if k != mt.REF_NAME}
        ann[mt.REF_NAME] = name
        clean["annotations"] = ann
        entries[(desc["digest"], name)] = clean
        refs_out.append(name)
        for d in store.walk(desc):
            blobs.add(d["digest"])
        # the image's signature tag, and those of its per-arch manifests (sign --recursive)
        signed = [desc["digest"]] + [d["digest"] for d in store.walk(desc)
                                     if d.get("mediaType") == mt.MANIFEST]
        for sig in (tags.get(t) for digest in signed for t in signature_tags(digest)):
            if sig is None:
                continue
            sd = dict(sig.descriptor)
            entries[(sd["digest"], sig.reference)] = sd
            for d in store.walk(sd):
                blobs.add(d["digest"])
    missing = [b for b in sorted(blobs) if not store.has_blob(b)]
    # the OCI empty config may be carried inline only; everything else must exist
    missing = [b for b in missing if b != mt.EMPTY_DIGEST]
    if missing:
        raise ArchiveError(f"cannot export: blob {missing[0]} is missing from the local store")
    index = {"schemaVersion": 2,
             "manifests": [entries[k] for k in sorted(entries)]}
    _write_tar(store, sorted(blobs), go_json(index), Path(dest))
    return {"file": str(dest), "images": refs_out, "blobs": len(blobs),
            "size": Path(dest).stat().st_size}


def _write_tar(store: Store, blobs: list[str], index_bytes: bytes, dest: Path) -> None:
    """The tar of an OCI layout with ``blobs``, written atomically; each blob hashed as it
    streams (one that changed on disk fails the export and leaves no tar)."""
    layout_bytes = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}, separators=(",", ":")).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(dest) as raw, \
                tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for b in blobs:
                name = f"blobs/sha256/{b.split(':', 1)[1]}"
                path = store.blob_path(b)
                if not path.is_file():
                    _add_bytes(tar, name, b"{}")  # inline empty config
                    continue
                with open(path, "rb") as f:
                    reader = _DigestReader(f)
                    tar.addfile(_info(name, os.fstat(f.fileno()).st_size), reader)
                    if reader.digest() != b:
                        raise IntegrityError(
                            f"cannot export: blob {b} of the local store does not match its "
                            f"digest (it is {reader.digest()}: changed on disk): remove the image "
                            "and build or pull it again (nothing was written)")
            _add_bytes(tar, "index.json", index_bytes)
            _add_bytes(tar, "oci-layout", layout_bytes)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise GadgetError(f"cannot export to {dest}: {where}{e.strerror or e} "
                          "(nothing was written)") from None


class _DigestReader:
    """A file read once, for the tar, and hashed on the way (no second read)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data

    def digest(self) -> str:
        return f"sha256:{self.h.hexdigest()}"


def _info(name: str, size: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.type = tarfile.REGTYPE
    return ti


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))


# ------------------------------------------------------------------------------ import
def _member_name(m: tarfile.TarInfo, src: Path) -> str | None:
    """The cleaned layout path of ``m``, None for an ignorable directory; raises if unsafe."""
    raw = m.name
    if raw.startswith("/") or "\\" in raw:
        raise ArchiveError(f"{src}: member {raw!r} has an absolute or Windows path: refused")
    parts = [p for p in PurePosixPath(raw).parts if p not in (".", "")]
    if ".." in raw.split("/"):
        raise ArchiveError(f"{src}: member {raw!r} contains '..': refused")
    name = "/".join(parts)
    if m.isdir():
        # a directory entry carries no data: ig's reader skips them all, and oras (like
        # ig's own store) leaves an empty ingest/ in its layouts. A file under one is still
        # refused below.
        return None
    if m.issym() or m.islnk():
        raise ArchiveError(f"{src}: member {raw!r} is a link (to {m.linkname!r}): refused")
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        raise ArchiveError(f"{src}: member {raw!r} is a device or fifo: refused")
    if not m.isreg():
        raise ArchiveError(f"{src}: member {raw!r} is not a regular file: refused")
    if name not in ("oci-layout", "index.json") and not _BLOB_RE.match(name):
        raise ArchiveError(
            f"{src}: unexpected member {raw!r}: an OCI layout tar holds oci-layout, index.json "
            "and blobs/sha256/<digest> only"
        )
    return name


#: ``check(tags, read, store)`` verifies the staged images of an import (raises to refuse);
#: ``read(digest, is_manifest)`` returns staged (or stored) bytes
ImportCheck = Callable[[list[tuple[str, dict[str, Any]]], Callable[[str, bool], bytes], Store], None]


def _stage_members(tar: tarfile.TarFile, src: Path, stage: Path,
                   max_member: int) -> tuple[dict[str, Path], bytes | None, bytes | None]:
    """Stage every blob of ``tar`` in ``stage``, each checked against its digest.
    Returns (digest -> staged file, index.json bytes, oci-layout bytes)."""
    seen: set[str] = set()
    staged: dict[str, Path] = {}
    index_bytes = layout_bytes = None
    for m in tar:
        name = _member_name(m, src)
        if name is None:
            continue
        if name in seen:
            raise ArchiveError(f"{src}: duplicate member {name!r}: refused")
        seen.add(name)
        if m.size > max_member:
            raise ArchiveError(
                f"{src}: member {name!r} is {m.size} bytes, over the limit of {max_member} "
                "(GADGETSMITH_IMPORT_MAX_BYTES)"
            )
        f = tar.extractfile(m)
        assert f is not None
        if name in ("index.json", "oci-layout"):
            if m.size > MAX_INDEX:
                raise ArchiveError(f"{src}: {name} is too large ({m.size} bytes)")
            if name == "index.json":
                index_bytes = f.read()
            else:
                layout_bytes = f.read()
            continue
        match = _BLOB_RE.match(name)
        assert match is not None  # _member_name refuses any other name
        staged["sha256:" + match.group(1)] = _stage_blob(f, src, name, match.group(1), m.size, stage)
    return staged, index_bytes, layout_bytes


def _stage_blob(f: IO[bytes], src: Path, name: str, hexd: str, size: int, stage: Path) -> Path:
    out = stage / hexd
    h = hashlib.sha256()
    n = 0
    with open(out, "wb") as o:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            n += len(chunk)
            o.write(chunk)
        o.flush()
        os.fsync(o.fileno())
    if h.hexdigest() != hexd or n != size:
        raise ArchiveError(f"{src}: {name} does not match its digest (content is sha256:{h.hexdigest()})")
    return out


def _index_manifests(src: Path, index_bytes: bytes | None, layout_bytes: bytes | None) -> list[Any]:
    """The ``manifests`` of the archive's index.json, after checking oci-layout."""
    if layout_bytes is None or index_bytes is None:
        raise ArchiveError(f"{src}: not an OCI layout tar (oci-layout or index.json missing)")
    try:
        version = json.loads(layout_bytes).get("imageLayoutVersion")
    except (ValueError, AttributeError):
        version = None
    if version != LAYOUT_VERSION:
        raise ArchiveError(f"{src}: oci-layout has imageLayoutVersion {version!r}, want 1.0.0")
    try:
        manifests = json.loads(index_bytes)["manifests"]
    except (ValueError, KeyError, TypeError):
        raise ArchiveError(f"{src}: index.json is not an OCI image index") from None
    if not isinstance(manifests, list):
        raise ArchiveError(f"{src}: index.json is not an OCI image index")
    return manifests


class _Staged:
    """The blobs an import can use: staged from the archive, else already in the store."""

    def __init__(self, src: Path, staged: dict[str, Path], store: Store) -> None:
        self.src, self.staged, self.store = src, staged, store

    def path(self, d: str) -> Path | None:
        if d in self.staged:
            return self.staged[d]
        return self.store.blob_path(d) if self.store.has_blob(d) else None

    def read(self, d: str, is_manifest: bool = False) -> bytes:
        p = self.path(d)
        if p is None:
            raise MissingBlob(d)
        return p.read_bytes()

    def check_graph(self, desc: dict[str, Any], ref: str) -> None:
        """Every blob under ``desc`` is there (the empty config may be inlined only)."""
        stack, done = [desc], set()
        while stack:
            d = stack.pop()
            dig = d.get("digest", "")
            if dig in done:
                continue
            done.add(dig)
            p = self.path(dig) if is_digest(dig) else None
            if p is None:
                if dig == mt.EMPTY_DIGEST:
                    continue
                raise ArchiveError(f"{self.src}: {ref}: blob {dig or '?'} is missing from the archive")
            if d.get("mediaType") in (mt.INDEX, mt.MANIFEST) or "manifests" in d:
                try:
                    doc = json.loads(p.read_bytes())
                except ValueError:
                    raise ArchiveError(f"{self.src}: {ref}: manifest {dig} is not JSON") from None
                stack.extend(doc.get("manifests") or [])
                if isinstance(doc.get("config"), dict):
                    stack.append(doc["config"])
                stack.extend(doc.get("layers") or [])


def _tags(src: Path, manifests: list[Any], blobs: _Staged,
          policy: Policy | None) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(tag, descriptor) of every named entry of the index, and the image references among
    them; each checked against the allowlist and for a complete graph."""
    tags: list[tuple[str, dict[str, Any]]] = []
    images: list[str] = []
    for desc in manifests:
        ref_name = (desc.get("annotations") or {}).get(mt.REF_NAME)
        if not ref_name:
            continue
        if is_signature_tag(ref_name):
            tag = ref_name
        else:
            try:
                tag = str(parse(ref_name))
            except InvalidReference as e:
                raise ArchiveError(f"{src}: index.json reference {ref_name!r}: {e}") from None
            if policy is not None:
                policy.check(IMPORT, tag, digest=desc.get("digest"))
            images.append(tag)
        blobs.check_graph(desc, ref_name)
        clean = {k: v for k, v in desc.items() if k != "annotations"}
        ann = {k: v for k, v in (desc.get("annotations") or {}).items() if k != mt.REF_NAME}
        if ann:
            clean["annotations"] = ann
        tags.append((tag, clean))
    if not images:
        raise ArchiveError(f"{src}: index.json tags no image (no {mt.REF_NAME} annotation)")
    return tags, images


def import_images(store: Store, src: Path, *, policy: Policy | None = None,
                  check: ImportCheck | None = None, max_member: int | None = None) -> dict[str, Any]:
    """Import every tagged image of the tar ``src``; all-or-nothing.

    Every image must be allowed by ``policy``. ``check`` verifies the staged images before
    anything is stored (`gadget import` passes the signature check the policy asks for,
    :func:`gadgetsmith.toolchain.signing.enforce.check_staged_images`).
    """
    src = Path(src)
    if max_member is None:
        max_member = int(os.environ.get("GADGETSMITH_IMPORT_MAX_BYTES", DEFAULT_MAX_MEMBER))
    if src.is_dir():
        raise ArchiveError(f"{src} is a directory: give the tar file that 'gadget export' or "
                           "'ig image export' wrote")
    try:
        tar = tarfile.open(src, mode="r:")
    except FileNotFoundError:
        raise ArchiveError(f"{src}: no such file") from None
    except PermissionError:
        raise ArchiveError(f"{src}: permission denied: cannot read the file") from None
    except tarfile.ReadError as e:
        raise ArchiveError(f"{src}: not a plain (uncompressed) tar archive ({e})") from None
    stage = store.staging_dir("import")
    try:
        with tar:
            try:
                staged, index_bytes, layout_bytes = _stage_members(tar, src, stage, max_member)
            except (tarfile.ReadError, EOFError) as e:  # the end of a cut file, mid-member
                raise ArchiveError(f"{src}: the tar archive is truncated or damaged ({e}): copy "
                                   "or export it again (nothing was imported)") from None
        blobs = _Staged(src, staged, store)
        tags, images = _tags(src, _index_manifests(src, index_bytes, layout_bytes), blobs, policy)
        if check is not None:
            check(tags, blobs.read, store)
        store.ingest(staged, tags)
        return {"images": images, "signatures": [t for t, _ in tags if is_signature_tag(t)],
                "blobs": len(staged)}
    finally:
        shutil.rmtree(stage, ignore_errors=True)
