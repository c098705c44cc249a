"""Whole-graph transfers: local store -> registry (push), registry -> store (pull),
registry -> registry (copy). Index, per-arch manifests, configs and layers, plus the
cosign signature tags ``sha256-<hex>.sig`` of the index and of each per-arch manifest
(``sign --recursive``), those that exist.

* push: blobs already in the repository are skipped (HEAD); missing ones are first
  mounted from another repository of the same registry that has them, else streamed
  from the store file; manifests go after their blobs, the tagged index last.
* pull: every manifest and blob is checked against its digest while it is staged in a
  ``.tmp-pull-*`` directory inside the store; only then, under the store lock, are the
  files renamed into ``blobs/`` and the tag written. A killed or failed pull leaves the
  store as it was (plus at most unreferenced blobs).
* copy: blobs stream from the source to the destination (mounted instead when both are
  the same registry) and are hashed on the way; the destination checks the digest too.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.runtime.oci.reference import Reference, is_digest
from gadgetsmith.toolchain.errors import NotFoundError
from gadgetsmith.toolchain.oci.sigtags import referrers_tag, signature_tag, signature_tags
from gadgetsmith.toolchain.oci.store import Store, StoreError
from gadgetsmith.toolchain.registry.client import (
    MANIFEST_TYPES,
    DigestMismatch,
    Readable,
    RegistryClient,
    RegistryError,
)
from gadgetsmith.toolchain.registry.transport import Response

WORKERS = 4

T = TypeVar("T")
R = TypeVar("R")

#: ``read(digest, is_manifest)``: the bytes of a staged (or already stored) blob
BlobReader = Callable[[str, bool], bytes]
#: ``check(read, root descriptor, the .sig manifest or None, the referrers tag schema's
#: sha256-<hex> index or None)`` raises to refuse a staged pull
StagedCheck = Callable[[BlobReader, dict[str, Any], bytes | None, bytes | None], None]
#: maps (signature tag, local signature manifest or None) to (manifest to send, new blobs
#: by digest), or None to send the local one unchanged (nothing when there is none)
SignatureView = Callable[[str, bytes | None], tuple[bytes, dict[str, bytes]] | None]
#: ``opener_for(descriptor)`` -> (open the blob's bytes, its size), for an upload
OpenerFor = Callable[[dict[str, Any]], tuple[Callable[[], Readable], int]]


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(fn, items)`` on up to WORKERS threads, in order; no pool for a single item
    (concurrent.futures is imported only when there is something to overlap)."""
    items = list(items)
    if len(items) <= 1:
        yield from map(fn, items)
        return
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(max_workers=WORKERS) as ex:
        yield from ex.map(fn, items)


class Progress:
    """Progress sink; the CLI draws a bar on a TTY, the default does nothing."""

    def total(self, nbytes: int) -> None:  # bytes that will be moved
        pass

    def advance(self, nbytes: int) -> None:
        pass


@dataclass
class Stats:
    reference: str
    digest: str = ""
    manifests: int = 0
    blobs: int = 0
    transferred: int = 0
    skipped: int = 0
    mounted: int = 0
    bytes: int = 0
    signatures: list[str] = field(default_factory=list)  # signature tags carried, index's first
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def signature(self) -> str | None:
        """The first signature tag carried (the index's when it is signed)."""
        return self.signatures[0] if self.signatures else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "digest": self.digest, "manifests": self.manifests,
            "blobs": self.blobs, "transferred": self.transferred, "skipped": self.skipped,
            "mounted": self.mounted, "bytes": self.bytes, "signature": self.signature,
            "signatures": self.signatures, "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def _is_manifest(desc: dict[str, Any]) -> bool:
    return desc.get("mediaType") in MANIFEST_TYPES


def _children(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(child manifests, blobs) referenced by a manifest/index document (not its subject)."""
    manifests: list[dict[str, Any]] = []
    blobs: list[dict[str, Any]] = []
    for d in doc.get("manifests") or []:
        (manifests if _is_manifest(d) or "mediaType" not in d else blobs).append(d)
    if isinstance(doc.get("config"), dict):
        blobs.append(doc["config"])
    for d in doc.get("layers") or []:
        blobs.append(d)
    return manifests, blobs


def _check_desc(d: Any, where: str) -> dict[str, Any]:
    if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or not is_digest(d["digest"]):
        raise RegistryError(f"{where}: descriptor with a missing or unsupported digest: {d!r:.120}")
    return d


# ------------------------------------------------------------------------------- push
@dataclass
class _Graph:
    """Manifests in post-order (children first; root last) and unique blobs."""

    manifests: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    blobs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def signed_digests(self) -> list[str]:
        """Digests whose signature tags travel with the image: the root, then the others."""
        root = self.manifests[-1][0]["digest"]
        return [root] + [d["digest"] for d, _ in self.manifests if d["digest"] != root]


def _local_graph(store: Store, root: dict[str, Any]) -> _Graph:
    g = _Graph()
    seen: set[str] = set()

    def visit(desc: dict[str, Any]) -> None:
        if desc["digest"] in seen:
            return
        seen.add(desc["digest"])
        try:
            data = store.read_blob(desc["digest"])
        except Exception as e:  # noqa: BLE001 - layout errors carry the reason
            raise StoreError(f"local image is incomplete: {e}") from None
        doc = json.loads(data)
        kids, blobs = _children(doc)
        for k in kids:
            visit(_check_desc(k, desc["digest"]))
        for b in blobs:
            _check_desc(b, desc["digest"])
            g.blobs.setdefault(b["digest"], b)
        media = desc.get("mediaType") or doc.get("mediaType") or mt.MANIFEST
        g.manifests.append((dict(desc, mediaType=media), data))

    visit(root)
    return g


def _blob_opener(store: Store, desc: dict[str, Any]) -> tuple[Callable[[], Readable], int]:
    d = desc["digest"]
    if store.has_blob(d):
        path = store.blob_path(d)
        return (lambda: open(path, "rb")), path.stat().st_size
    if desc.get("data"):
        raw = base64.b64decode(desc["data"])
        return (lambda: io.BytesIO(raw)), len(raw)
    raise StoreError(f"local image is incomplete: blob {d} is missing from the store")


def _push_graph(client: RegistryClient, repo: str, tag: str, g: _Graph, stats: Stats,
                progress: Progress, mount_from: list[str], opener_for: OpenerFor) -> None:
    def one(desc: dict[str, Any]) -> tuple[str, int]:
        d = desc["digest"]
        if client.blob_head(repo, d):
            progress.advance(int(desc.get("size", 0)))
            return "skipped", 0
        location = None
        for src in mount_from[:1]:
            mounted, location = client.blob_mount(repo, d, src)
            if mounted:
                progress.advance(int(desc.get("size", 0)))
                return "mounted", 0
        opener, size = opener_for(desc)
        client.blob_upload(repo, d, size, opener, progress.advance, location=location)
        return "transferred", size

    root = g.manifests[-1][0]["digest"]
    if not tag.startswith("sha256:"):
        # unchanged re-push: the tag already names this exact graph. Registries accept a
        # manifest only once everything it references is present, so nothing is missing.
        have = client.manifest_head(repo, tag)
        if have is not None and have.digest == root:
            stats.blobs += len(g.blobs)
            stats.skipped += len(g.blobs)
            stats.manifests += len(g.manifests)
            return
    progress.total(sum(int(b.get("size", 0)) for b in g.blobs.values()))
    stats.blobs += len(g.blobs)
    for kind, n in _parallel(one, g.blobs.values()):
        setattr(stats, kind, getattr(stats, kind) + 1)
        stats.bytes += n
    for i, (desc, data) in enumerate(g.manifests):
        last = i == len(g.manifests) - 1
        stats.manifests += 1
        if not last and client.manifest_head(repo, desc["digest"]) is not None:
            continue
        client.manifest_put(repo, tag if last else desc["digest"], data, desc["mediaType"])


def push(store: Store, source: str, dest: Reference, client: RegistryClient, *,
         progress: Progress | None = None, mount_from: list[str] | None = None,
         with_signature: bool = True,
         signature_view: SignatureView | None = None,
         ) -> Stats:
    """Push the local image ``source`` (reference or digest) to ``dest``.

    ``signature_view(tag, local signature manifest or None)`` may return another manifest
    to send under that tag (with the blobs it adds that are not in the store), e.g. only
    the signatures naming ``dest``, or one made for this push; None sends the local one
    (nothing when there is none)."""
    t0 = time.monotonic()
    progress = progress or Progress()
    _, root = store.lookup(source)
    root = {k: v for k, v in root.items() if k != "annotations"} | (
        {"annotations": {k: v for k, v in (root.get("annotations") or {}).items() if k != mt.REF_NAME}}
        if root.get("annotations") else {})
    stats = Stats(str(dest), digest=root["digest"])
    g = _local_graph(store, root)
    tag = dest.digest or dest.tag or "latest"
    if dest.digest and dest.digest != root["digest"]:
        raise RegistryError(f"{dest}: the local image has digest {root['digest']}, not {dest.digest}")

    def opener_for(desc: dict[str, Any]) -> tuple[Callable[[], Readable], int]:
        return _blob_opener(store, desc)

    _push_graph(client, dest.path, tag, g, stats, progress, mount_from or [], opener_for)
    if with_signature:
        # the index's signature, and those of the per-arch manifests (cosign sign --recursive)
        local_tags = {e.reference: e for e in store.entries()}
        for sig in (t for d in g.signed_digests() for t in signature_tags(d)):
            e = local_tags.get(sig)
            sdesc = {k: v for k, v in e.descriptor.items() if k != "annotations"} if e else None
            view = signature_view(sig, store.read_blob(sdesc["digest"]) if sdesc else None) \
                if signature_view else None
            if view is None:
                if sdesc is None:
                    continue
                sg = _local_graph(store, sdesc)
                _push_graph(client, dest.path, sig, sg, stats, Progress(), [], opener_for)
            else:
                _push_graph(client, dest.path, sig, _view_graph(view[0]), stats, Progress(),
                            [], _view_opener(store, view[1]))
            stats.signatures.append(sig)
    stats.seconds = time.monotonic() - t0
    return stats


def _view_graph(manifest: bytes) -> _Graph:
    """The graph of a manifest that is not in the store (one level: config and layers)."""
    g = _Graph()
    _, blobs = _children(json.loads(manifest))
    for b in blobs:
        _check_desc(b, "signature manifest")
        g.blobs.setdefault(b["digest"], b)
    g.manifests.append(({"mediaType": mt.MANIFEST, "digest": sha256_digest(manifest),
                         "size": len(manifest)}, manifest))
    return g


def _view_opener(store: Store, extra: dict[str, bytes]) -> OpenerFor:
    def opener_for(desc: dict[str, Any]) -> tuple[Callable[[], Readable], int]:
        data = extra.get(desc["digest"])
        if data is None:
            return _blob_opener(store, desc)
        return (lambda: io.BytesIO(data)), len(data)

    return opener_for


# ------------------------------------------------------------------------------- remote graph
def _remote_graph(client: RegistryClient, repo: str, ref: str, top_missing_ok: bool = False,
                  accept: Callable[[bytes], bool] | None = None) -> _Graph | None:
    """Fetch (and digest-check) every manifest under ``ref``; blobs are listed, not fetched.
    None when ``ref`` is missing (``top_missing_ok``) or ``accept(top manifest)`` is false."""
    got = client.manifest_get(repo, ref, missing_ok=top_missing_ok)
    if got is None or (accept is not None and not accept(got[0])):
        return None
    g = _Graph()
    seen: set[str] = set()

    def visit(data: bytes, media: str, digest: str) -> None:
        seen.add(digest)
        try:
            doc = json.loads(data)
        except ValueError:
            raise RegistryError(f"{client.host}/{repo}@{digest}: manifest is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{client.host}/{repo}@{digest}: manifest is not a JSON object")
        kids, blobs = _children(doc)
        for k in kids:
            _check_desc(k, digest)
            if k["digest"] in seen:
                continue
            kd, km, kdig = client.manifest_get(repo, k["digest"])
            if "size" in k and int(k["size"]) != len(kd):
                raise DigestMismatch(f"{client.host}/{repo}@{kdig}: size {len(kd)} != descriptor {k['size']}")
            visit(kd, k.get("mediaType") or km, kdig)
        for b in blobs:
            g.blobs.setdefault(_check_desc(b, digest)["digest"], b)
        g.manifests.append(({"mediaType": media or mt.MANIFEST, "digest": digest, "size": len(data)}, data))

    visit(*got)
    return g


def _remote_signatures(client: RegistryClient, repo: str, g: _Graph, stats: Stats,
                       verb: str) -> list[tuple[str, _Graph]]:
    """(tag, graph) of the signature tags of ``g``'s manifests that exist in ``repo``, the
    index's first. A tag that is not there is skipped; one that cannot be read is a warning."""
    out = []
    for sig in (t for d in g.signed_digests() for t in signature_tags(d)):
        try:
            sg = _remote_graph(client, repo, sig, top_missing_ok=True)
        except RegistryError as e:
            stats.warnings.append(f"signature {sig} not {verb}: {e}")
            continue
        if sg is not None:
            out.append((sig, sg))
    return out


# ------------------------------------------------------------------------------- pull
def _stage_graphs(store: Store, client: RegistryClient, repo: str, graphs: list[_Graph], stage: Path,
                  stats: Stats, progress: Progress) -> dict[str, Path]:
    """Write the (already checked) manifests of ``graphs`` into ``stage`` and download their
    blobs there, each checked against its digest and size; what the store has is skipped.
    Returns digest -> staged file, for :meth:`Store.ingest`."""
    staged: dict[str, Path] = {}
    for gg in graphs:
        for desc, data in gg.manifests:
            stats.manifests += 1
            if store.has_blob(desc["digest"]):
                continue
            p = stage / desc["digest"].split(":", 1)[1]
            with open(p, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            staged[desc["digest"]] = p
    blobs: dict[str, dict[str, Any]] = {}
    for gg in graphs:
        blobs.update(gg.blobs)
    stats.blobs = len(blobs)
    todo = [b for d, b in blobs.items() if not store.has_blob(d)]
    stats.skipped = stats.blobs - len(todo)
    progress.total(sum(int(b.get("size", 0)) for b in todo))

    def fetch(desc: dict[str, Any]) -> tuple[str, Path, int]:
        d = desc["digest"]
        p = stage / d.split(":", 1)[1]
        with open(p, "wb") as f:
            n = client.blob_download(repo, d, f, int(desc["size"]) if "size" in desc else None,
                                     progress.advance)
            f.flush()
            os.fsync(f.fileno())
        return d, p, n

    for d, p, n in _parallel(fetch, todo):
        staged[d] = p
        stats.transferred += 1
        stats.bytes += n
    return staged


def pull(store: Store, ref: Reference, client: RegistryClient, *, progress: Progress | None = None,
         with_signature: bool = True,
         check: StagedCheck | None = None,
         ) -> Stats:
    """Pull ``ref`` with its whole graph (all architectures) into the store.

    ``check(read, root_descriptor, signature_manifest_or_None, referrers_index_or_None)``
    (signature verification) runs on the staged download, before anything is written to
    the store; it raises to refuse the image. ``read(digest, is_manifest)`` returns the staged bytes.
    """
    t0 = time.monotonic()
    progress = progress or Progress()
    repo = ref.path
    g = _remote_graph(client, repo, ref.digest or ref.tag or "latest")
    assert g is not None
    root_desc = g.manifests[-1][0]
    stats = Stats(str(ref), digest=root_desc["digest"])
    sigs = _remote_signatures(client, repo, g, stats, "pulled") if with_signature else []
    sig_graph = dict(sigs).get(signature_tag(root_desc["digest"]))
    ref_graph = dict(sigs).get(referrers_tag(root_desc["digest"]))
    graphs = [g] + [sg for _, sg in sigs]

    stage = store.staging_dir("pull")
    try:
        staged = _stage_graphs(store, client, repo, graphs, stage, stats, progress)
        if check is not None:
            in_memory = {d["digest"]: data for gg in graphs for d, data in gg.manifests}

            def read(digest: str, is_manifest: bool = False) -> bytes:
                if digest in in_memory:
                    return in_memory[digest]
                if digest in staged:
                    return staged[digest].read_bytes()
                return store.read_blob(digest, verify=False)

            check(read, root_desc, sig_graph.manifests[-1][1] if sig_graph else None,
                  ref_graph.manifests[-1][1] if ref_graph else None)
        tags = [(str(ref), root_desc)] + [(sig, sg.manifests[-1][0]) for sig, sg in sigs]
        stats.signatures = [sig for sig, _ in sigs]
        store.ingest(staged, tags)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    stats.seconds = time.monotonic() - t0
    return stats


def fetch_signatures(store: Store, client: RegistryClient, repo: str, digests: list[str], *,
                     accept: Callable[[bytes], bool] | None = None) -> list[str]:
    """Bring the signature tags of ``digests`` from ``repo`` into the store: the
    ``sha256-<hex>.sig`` manifests and the referrers tag schema's ``sha256-<hex>`` indexes
    (where cosign's OCI 1.1 signatures and bundles are). Each on its own and whole:
    manifest and blobs are checked against their digests while staged, then ingested with
    the tag. A tag that is missing, whose manifest
    ``accept`` refuses, or one of whose blobs is missing or does not match is skipped and
    nothing of it is stored. Returns the tags stored."""
    fetched = []
    for sig in (t for d in digests for t in signature_tags(d)):
        g = _remote_graph(client, repo, sig, top_missing_ok=True, accept=accept)
        if g is None:
            continue
        stage = store.staging_dir("pull")
        try:
            store.ingest(_stage_graphs(store, client, repo, [g], stage, Stats(sig), Progress()),
                         [(sig, g.manifests[-1][0])])
            fetched.append(sig)
        except (DigestMismatch, NotFoundError):
            continue  # never a partial signature graph
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return fetched


# ------------------------------------------------------------------------------- copy
class _HashingStream:
    """Reads a source blob response; checks size and digest when it reaches the end."""

    def __init__(self, resp: Response, digest: str, size: int) -> None:
        self.resp, self.digest, self.size = resp, digest, size
        self.h = hashlib.sha256()
        self.n = 0
        self.it = resp.iter_content(1024 * 1024)
        self.buf = b""

    def read(self, n: int = -1) -> bytes:
        while not self.buf:
            try:
                self.buf = next(self.it)
            except StopIteration:
                got = "sha256:" + self.h.hexdigest()
                if got != self.digest or self.n != self.size:
                    raise DigestMismatch(
                        f"source blob {self.digest} does not match its digest (got {got}, "
                        f"{self.n} bytes): nothing was tagged at the destination"
                    ) from None
                return b""
            self.h.update(self.buf)
            self.n += len(self.buf)
        take = self.buf if n is None or n < 0 else self.buf[:n]
        self.buf = self.buf[len(take):]
        return take

    def close(self) -> None:
        self.resp.close()


def copy(src: Reference, dst: Reference, src_client: RegistryClient, dst_client: RegistryClient, *,
         progress: Progress | None = None, with_signature: bool = True) -> Stats:
    """Copy ``src`` (whole graph, and its signature tags) to ``dst``."""
    t0 = time.monotonic()
    progress = progress or Progress()
    g = _remote_graph(src_client, src.path, src.digest or src.tag or "latest")
    assert g is not None
    root = g.manifests[-1][0]
    stats = Stats(str(dst), digest=root["digest"])
    same_registry = src_client.host.lower() == dst_client.host.lower() and src.path != dst.path
    mount_from = [src.path] if same_registry else []

    def opener_for(desc: dict[str, Any]) -> tuple[Callable[[], Readable], int]:
        size = int(desc["size"])
        return (lambda: _HashingStream(src_client.blob_stream(src.path, desc["digest"]),
                                       desc["digest"], size)), size

    tag = dst.digest or dst.tag or "latest"
    _push_graph(dst_client, dst.path, tag, g, stats, progress, mount_from, opener_for)
    if with_signature:
        for sig, sg in _remote_signatures(src_client, src.path, g, stats, "copied"):
            _push_graph(dst_client, dst.path, sig, sg, stats, Progress(), mount_from, opener_for)
            stats.signatures.append(sig)
    stats.seconds = time.monotonic() - t0
    return stats


__all__ = ["Progress", "Stats", "copy", "fetch_signatures", "pull", "push", "signature_tag"]
