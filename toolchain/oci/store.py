"""The local gadget store: an OCI image-layout directory, like ig's oci-store.

    <store>/oci-layout          {"imageLayoutVersion":"1.0.0"}
    <store>/index.json          tagged images (ref.name = full normalised reference)
    <store>/index.json.lock     flock(2) held by writers
    <store>/blobs/sha256/<hex>
    <store>/.tmp-<kind>-<pid>.<start>-*   staging of a running pull/import/build
    <store>/blobs/sha256/.tmp-<pid>.<start>-*   a blob being written

Every change is made under the lock, and every file is written atomically, so a killed
command leaves the store as it was before or after the change, never in between. What a
killed command leaves is temporary data named after its process (see
:mod:`gadgetsmith.toolchain.fsutil`): the next writer, once it holds the lock, removes
the entries whose process is gone, and ``gadget prune`` does too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import (
    INDEX_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    ImageEntry,
    Layout,
    LayoutError,
    UnknownReference,
    default_store_path,
    sha256_digest,
)
from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.fsutil import (
    atomic_write,
    entry_size,
    fsync_dir,
    locked,
    owned_mkdtemp,
    remove_entry,
    stale_entries,
    stale_system_temporaries,
)
from gadgetsmith.toolchain.names import check_names_repository
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.sigtags import is_signature_tag

LOCK_FILE = "index.json.lock"
_WRITE_ERRORS = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                 errno.EROFS: "it is on a read-only file system",
                 errno.ENOSPC: "no space left on its device", errno.EDQUOT: "disk quota exceeded"}
_WRITE_FIX = "use a store you can write (--store DIR or GADGETSMITH_STORE), or fix that first"
#: how every temporary entry of the store is named (a prefix of it)
TMP_PREFIX = ".tmp-"


class StoreError(GadgetError):
    """The local store cannot be read or written (the message names the file)."""


class Store(Layout):
    """Read/write access to the local store. Create it with :func:`open_store`."""

    # -- setup ------------------------------------------------------------------------
    def init(self) -> None:
        """Create the layout if the directory is empty or missing; refuse anything else.

        Runs under the store lock, so concurrent first uses of a new store agree.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise StoreError(f"store path {root} is a file, not a directory: choose another --store")
        if self.exists():
            try:
                self.check()
            except LayoutError as e:
                raise StoreError(str(e)) from None
            return
        if root.is_dir() and self._foreign_entries():
            raise self._not_a_layout()
        with self.writing():
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.lock():
            if self.exists():
                return
            if self._foreign_entries():
                raise self._not_a_layout()
            (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if not (root / INDEX_FILE).exists():
                atomic_write(root / INDEX_FILE, self._encode_index([]))
            # oci-layout last: its presence marks a complete layout
            atomic_write(
                root / LAYOUT_FILE,
                json.dumps({"imageLayoutVersion": LAYOUT_VERSION}, separators=(",", ":")).encode(),
            )

    def _foreign_entries(self) -> list[str]:
        ours = {LOCK_FILE, INDEX_FILE, "blobs"}
        return [p.name for p in self.root.iterdir()
                if p.name not in ours and not p.name.startswith(TMP_PREFIX)]

    def _not_a_layout(self) -> StoreError:
        return StoreError(
            f"{self.root} is not an OCI image layout (no {LAYOUT_FILE} file) and is not empty: "
            "point --store / GADGETSMITH_STORE at an empty directory or an OCI layout"
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store lock; temporary data of killed commands is removed first. A store
        that cannot be written (permissions, read-only or full file system) is a StoreError
        naming it, raised here or from the block."""
        with self.writing(), locked(self.root / LOCK_FILE):
            self.remove_stale()
            yield

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Turn the OSErrors of writing into the store into one StoreError that says why."""
        try:
            yield
        except OSError as e:
            why = _WRITE_ERRORS.get(e.errno or 0)
            if why is None:
                raise
            where = f" ({e.filename})" if e.filename else ""
            raise StoreError(f"cannot write to the store {self.root}: {why}{where}: {_WRITE_FIX}") from None

    def stale_temporaries(self) -> list[Path]:
        """Temporary entries (staging directories, half-written blobs) whose command is gone."""
        return (stale_entries(self.root, [TMP_PREFIX])
                + stale_entries(self.blobs_dir, [TMP_PREFIX]))

    def remove_stale(self) -> int:
        """Remove :meth:`stale_temporaries` (caller holds the lock). Returns bytes freed."""
        freed = 0
        for p in self.stale_temporaries():
            freed += entry_size(p)
            remove_entry(p)
        return freed

    # -- blobs ------------------------------------------------------------------------
    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` under its sha256 digest (no-op if present). Returns the digest."""
        actual = sha256_digest(data)
        if digest is not None and digest != actual:
            raise StoreError(f"content does not match its digest {digest} (got {actual})")
        path = self.blob_path(actual)
        if path.is_file() and path.stat().st_size == len(data):
            return actual
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o644)
        return actual

    # -- index ------------------------------------------------------------------------
    @staticmethod
    def _encode_index(manifests: list[dict[str, Any]]) -> bytes:
        return go_json({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": manifests})

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        atomic_write(self.root / INDEX_FILE, self._encode_index(manifests))

    def set_tag(self, reference: str, descriptor: dict[str, Any]) -> str | None:
        """Point ``reference`` (full normalised) at ``descriptor``. Caller holds the lock.

        Returns the digest the tag pointed at before, if it moved.
        """
        manifests = self.read_index()["manifests"]
        previous = None
        kept = []
        for d in manifests:
            ref = (d.get("annotations") or {}).get(mt.REF_NAME)
            if ref == reference:
                previous = d["digest"]
                continue
            kept.append(d)
        entry = dict(descriptor)
        ann = dict(entry.get("annotations") or {})
        ann[mt.REF_NAME] = reference
        entry["annotations"] = ann
        kept.append(entry)
        self._write_index(kept)
        return previous if previous != descriptor["digest"] else None

    def add_image(
        self,
        blobs: Iterable[bytes],
        index_desc: dict[str, Any],
        reference: str | None,
    ) -> str | None:
        """Write blobs and tag the index, all under the store lock.

        Without a reference the image is kept as an untagged index entry. Returns the
        digest a moved tag pointed at before (already garbage-collected if unreferenced).
        """
        with self.lock():
            for data in blobs:
                self.put_blob(data)
            if not self.has_blob(index_desc["digest"]):
                raise StoreError(f"index blob {index_desc['digest']} was not written")
            if reference is None:
                manifests = self.read_index()["manifests"]
                if not any(
                    d["digest"] == index_desc["digest"] and not (d.get("annotations") or {}).get(mt.REF_NAME)
                    for d in manifests
                ):
                    manifests.append(dict(index_desc))
                    self._write_index(manifests)
                return None
            previous = self.set_tag(reference, index_desc)
            if previous:
                self.gc_locked()
            return previous

    def staging_dir(self, kind: str) -> Path:
        """A new ``.tmp-<kind>-<pid>.<start>-*`` directory in the store, for files to
        :meth:`ingest` (or a build's objects).

        The caller removes it when done; one left by a killed command is removed by the
        next writer (:meth:`lock`) or ``gadget prune``.
        """
        self.init()
        with self.writing():
            return owned_mkdtemp(f"{TMP_PREFIX}{kind}-", self.root)

    @contextlib.contextmanager
    def staging(self, kind: str) -> Iterator[Path]:
        """:meth:`staging_dir`, removed when the block ends."""
        path = self.staging_dir(kind)
        try:
            yield path
        finally:
            remove_entry(path)

    def ingest(self, staged: dict[str, Path], tags: list[tuple[str, dict[str, Any]]]) -> None:
        """Move verified blob files into the store, then set ``tags``; all under the lock.

        ``staged`` maps digests to files on the store's filesystem whose content has
        already been checked against the digest. Blobs go in first and tags last, so a
        killed command leaves at most unreferenced blobs (removed by the next GC).
        """
        with self.lock():
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            moved = False
            for digest, src in staged.items():
                dst = self.blob_path(digest)
                if dst.is_file():
                    continue
                os.chmod(src, 0o644)
                os.replace(src, dst)
                moved = True
            if moved:
                fsync_dir(self.blobs_dir)
            gc = False
            for reference, desc in tags:
                if not self.has_blob(desc["digest"]):
                    raise StoreError(f"{reference}: blob {desc['digest']} was not written")
                gc = bool(self.set_tag(reference, desc)) or gc
            if gc:
                self.gc_locked()

    # -- user operations --------------------------------------------------------------
    def lookup(self, text: str) -> tuple[Reference | None, dict[str, Any]]:
        try:
            return self.resolve(text)
        except UnknownReference:
            raise NotFoundError(
                f"unknown reference {text!r} ({_full(text)}): see 'gadget list' for local images"
            ) from None
        except InvalidReference as e:
            raise UsageError(str(e)) from None

    def tag(self, source: str, target: str, force: bool = False) -> tuple[str, str]:
        """Tag the image ``source`` as ``target``. Returns (full target ref, digest)."""
        check_names_repository(target, "tag")
        try:
            tref = parse(target)
        except InvalidReference as e:
            raise UsageError(str(e)) from None
        if tref.digest:
            raise UsageError(f"cannot tag with a digest reference {target!r}: give name:tag")
        with self.lock():
            _, desc = self.lookup(source)
            full = str(tref)
            for entry in self.entries():
                if entry.reference == full and entry.digest != desc["digest"] and not force:
                    raise StoreError(
                        f"tag {full} already points at {entry.digest[:19]}: "
                        "remove it first or use --force to move it"
                    )
            clean = {k: v for k, v in desc.items() if k != "annotations"}
            ann = {k: v for k, v in (desc.get("annotations") or {}).items() if k != mt.REF_NAME}
            if ann:
                clean["annotations"] = ann
            previous = self.set_tag(full, clean)
            if previous:
                self.gc_locked()
            return full, desc["digest"]

    def remove(self, text: str) -> tuple[str, bool, list[str]]:
        """Untag ``text``; delete the image and GC its blobs when no tag is left.

        When no entry refers to the image's digest any more, its cosign tags
        (``sha256-<hex>.sig``, ``.att``, ``.sbom``; for the index and for each of its
        per-arch manifests that no remaining image shares) are removed too, so they do not
        dangle. Returns (what was removed, whether blobs were deleted, removed cosign tags).
        """
        with self.lock():
            ref, desc = self.lookup(text)
            manifests = self.read_index()["manifests"]
            if ref is not None and ref.tag and not ref.digest:
                full = str(ref)
                kept = [
                    d for d in manifests if (d.get("annotations") or {}).get(mt.REF_NAME) != full
                ]
                removed = full
            else:
                kept = [d for d in manifests if d["digest"] != desc["digest"]]
                removed = desc["digest"]
            still_used = any(d["digest"] == desc["digest"] for d in kept)
            dropped: list[str] = []
            if not still_used:
                kept, dropped = self._drop_cosign_tags(desc, kept)
            self._write_index(kept)
            deleted = 0 if still_used else self.gc_locked()
            return removed, deleted > 0, dropped

    def _drop_cosign_tags(
        self, desc: dict[str, Any], kept: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """``kept`` without the cosign tags of ``desc``'s manifests no other image uses."""
        def manifest_digests(d: dict[str, Any]) -> set[str]:
            # walk() reads what it can: a missing or damaged blob just ends that branch
            return {x["digest"] for x in self.walk(d) if x.get("mediaType") in (mt.INDEX, mt.MANIFEST)}

        orphaned = manifest_digests(desc) | {desc["digest"]}
        for d in kept:
            name = (d.get("annotations") or {}).get(mt.REF_NAME) or ""
            if not is_signature_tag(name):
                orphaned -= manifest_digests(d)
        suffixes = {"sha256-" + x.split(":", 1)[1] for x in orphaned if x.startswith("sha256:")}
        out, dropped = [], []
        for d in kept:
            name = (d.get("annotations") or {}).get(mt.REF_NAME) or ""
            if is_signature_tag(name) and name.split(".", 1)[0] in suffixes:
                dropped.append(name)
            else:
                out.append(d)
        return out, dropped

    def gc(self) -> int:
        with self.lock():
            return self.gc_locked()

    def gc_locked(self) -> int:
        """Delete blobs not reachable from index.json. Caller holds the lock."""
        deleted = 0
        for p in self.unreferenced_blobs():
            try:
                p.unlink()
                deleted += 1
            except OSError:
                pass
        if deleted:
            fsync_dir(self.blobs_dir)
        return deleted

    def unreferenced_blobs(self) -> list[Path]:
        """Blob files no entry of index.json reaches (temporary files are not blobs)."""
        reachable: set[str] = set()
        for d in self.read_index()["manifests"]:
            for x in self.walk(d):
                reachable.add(x["digest"])
        bdir = self.blobs_dir
        if not bdir.is_dir():
            return []
        return [p for p in sorted(bdir.iterdir())
                if not p.name.startswith(TMP_PREFIX) and f"sha256:{p.name}" not in reachable]

    def prune(self, dry_run: bool = False, system_temp: bool = True) -> PruneReport:
        """Remove unreferenced blobs and temporary data of killed commands (``gadget
        prune``): the store's, and with ``system_temp`` the toolchain's directories in the
        system's temp directory; with ``dry_run``, only say what would go."""
        report = PruneReport(dry_run=dry_run)
        if system_temp:
            for p in stale_system_temporaries():
                report.temporaries.append((str(p), entry_size(p)))
                if not dry_run:
                    remove_entry(p)
        with locked(self.root / LOCK_FILE):  # not lock(): it would remove them unreported
            for p in self.stale_temporaries():
                report.temporaries.append((str(p), entry_size(p)))
                if not dry_run:
                    remove_entry(p)
            for p in self.unreferenced_blobs():
                report.blobs.append((f"sha256:{p.name}", entry_size(p)))
            if not dry_run and report.blobs:
                self.gc_locked()
        return report

    def images(self) -> list[ImageEntry]:
        return self.entries()

    def names_of(self, digest: str) -> list[str]:
        """The local names (tags, not cosign ``sha256-<hex>.*`` tags) of ``digest``."""
        return [e.reference for e in self.entries()
                if e.digest == digest and not is_signature_tag(e.reference)]


@dataclass
class PruneReport:
    """What :meth:`Store.prune` removed (or would remove): ``(name, bytes)`` pairs."""

    dry_run: bool = False
    blobs: list[tuple[str, int]] = field(default_factory=list)
    temporaries: list[tuple[str, int]] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(n for _, n in self.blobs) + sum(n for _, n in self.temporaries)

    def as_dict(self) -> dict[str, Any]:
        return {"dryRun": self.dry_run,
                "blobs": [{"digest": d, "size": n} for d, n in self.blobs],
                "temporaries": [{"path": p, "size": n} for p, n in self.temporaries],
                "freed": self.freed}


def _full(text: str) -> str:
    try:
        return str(parse(text))
    except InvalidReference:
        return text


def open_store(path: Path | str | None = None, create: bool = True) -> Store:
    """Open (and by default create) the store at ``path`` or the default location."""
    store = Store(Path(path) if path else default_store_path())
    if create:
        store.init()
    else:
        if not store.root.exists():
            return store
        try:
            store.check()
        except LayoutError as e:
            raise StoreError(str(e)) from None
    return store


__all__ = ["PruneReport", "Store", "StoreError", "TMP_PREFIX", "open_store"]
