"""`gadget export` / `gadget import`: an OCI layout in a plain tar, like `ig image export`.

Export writes ``blobs/sha256/<hex>`` (lexical order), ``index.json`` (manifests sorted by
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
import json
import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import LAYOUT_VERSION
from gadgetsmith.runtime.oci.reference import InvalidReference, is_digest, parse
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.fsutil import atomic_writer
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.signing import is_signature_tag, signature_tag

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
        for digest in signed:
            sig = tags.get(signature_tag(digest))
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
    index_bytes = go_json(index)
    layout_bytes = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}, separators=(",", ":")).encode()

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(dest) as raw, \
                tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for b in sorted(blobs):
                name = f"blobs/sha256/{b.split(':', 1)[1]}"
                path = store.blob_path(b)
                if not path.is_file():
                    _add_bytes(tar, name, b"{}")  # inline empty config
                    continue
                with open(path, "rb") as f:
                    tar.addfile(_info(name, os.fstat(f.fileno()).st_size), f)
            _add_bytes(tar, "index.json", index_bytes)
            _add_bytes(tar, "oci-layout", layout_bytes)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise GadgetError(f"cannot export to {dest}: {where}{e.strerror or e} "
                          "(nothing was written)") from None
    return {"file": str(dest), "images": refs_out, "blobs": len(blobs),
            "size": dest.stat().st_size}


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
    import io

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


def import_images(store: Store, src: Path, *, policy=None,
                  max_member: int | None = None, verify: bool = True, warn=None) -> dict[str, Any]:
    """Import every tagged image of the tar ``src``; all-or-nothing.

    Images the policy names public keys for must carry a signature that verifies (checked
    on the staged files, before anything is stored); ``verify=False`` skips that, loudly.
    """
    src = Path(src)
    if max_member is None:
        max_member = int(os.environ.get("GADGETSMITH_IMPORT_MAX_BYTES", DEFAULT_MAX_MEMBER))
    try:
        tar = tarfile.open(src, mode="r:")
    except FileNotFoundError:
        raise ArchiveError(f"{src}: no such file") from None
    except tarfile.ReadError as e:
        raise ArchiveError(f"{src}: not a plain (uncompressed) tar archive ({e})") from None
    stage = store.staging_dir("import")
    try:
        seen: set[str] = set()
        staged: dict[str, Path] = {}
        index_bytes = layout_bytes = None
        with tar:
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
                    data = f.read()
                    if name == "index.json":
                        index_bytes = data
                    else:
                        layout_bytes = data
                    continue
                hexd = _BLOB_RE.match(name).group(1)
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
                if h.hexdigest() != hexd or n != m.size:
                    raise ArchiveError(
                        f"{src}: {name} does not match its digest (content is sha256:{h.hexdigest()})"
                    )
                staged["sha256:" + hexd] = out
        if layout_bytes is None or index_bytes is None:
            raise ArchiveError(f"{src}: not an OCI layout tar (oci-layout or index.json missing)")
        try:
            version = json.loads(layout_bytes).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            version = None
        if version != LAYOUT_VERSION:
            raise ArchiveError(f"{src}: oci-layout has imageLayoutVersion {version!r}, want 1.0.0")
        try:
            index = json.loads(index_bytes)
            manifests = index["manifests"]
            assert isinstance(manifests, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ArchiveError(f"{src}: index.json is not an OCI image index") from None

        def have(d: str) -> Path | None:
            if d in staged:
                return staged[d]
            return store.blob_path(d) if store.has_blob(d) else None

        def check_graph(desc: dict[str, Any], ref: str) -> None:
            stack, done = [desc], set()
            while stack:
                d = stack.pop()
                dig = d.get("digest", "")
                if dig in done:
                    continue
                done.add(dig)
                p = have(dig) if is_digest(dig) else None
                if p is None:
                    if dig == mt.EMPTY_DIGEST:
                        continue
                    raise ArchiveError(f"{src}: {ref}: blob {dig or '?'} is missing from the archive")
                if d.get("mediaType") in (mt.INDEX, mt.MANIFEST) or "manifests" in d:
                    try:
                        doc = json.loads(p.read_bytes())
                    except ValueError:
                        raise ArchiveError(f"{src}: {ref}: manifest {dig} is not JSON") from None
                    stack.extend(doc.get("manifests") or [])
                    if isinstance(doc.get("config"), dict):
                        stack.append(doc["config"])
                    stack.extend(doc.get("layers") or [])

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
                    from gadgetsmith.toolchain.policy import RUN

                    policy.check(RUN, tag, digest=desc.get("digest"))
                images.append(tag)
            check_graph(desc, ref_name)
            clean = {k: v for k, v in desc.items() if k != "annotations"}
            ann = {k: v for k, v in (desc.get("annotations") or {}).items() if k != mt.REF_NAME}
            if ann:
                clean["annotations"] = ann
            tags.append((tag, clean))
        if not images:
            raise ArchiveError(f"{src}: index.json tags no image (no {mt.REF_NAME} annotation)")
        if policy is not None:
            from gadgetsmith.toolchain.signing.enforce import check_staged_images

            def read(d: str, is_manifest: bool = False) -> bytes:
                p = have(d)
                if p is None:
                    from gadgetsmith.toolchain.signing.verify import MissingBlob

                    raise MissingBlob(d)
                return p.read_bytes()

            check_staged_images(policy, tags, read, store, no_verify=not verify, warn=warn)
        store.ingest(staged, tags)
        return {"images": images, "signatures": [t for t, _ in tags if is_signature_tag(t)],
                "blobs": len(staged)}
    finally:
        shutil.rmtree(stage, ignore_errors=True)
