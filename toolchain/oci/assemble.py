"""Assemble a gadget OCI image (index -> per-arch manifests -> config + layers) as ig does."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.toolchain import __version__
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.gojson import dumps as go_json
from gadgetsmith.toolchain.oci.gojson import sorted_map

ARCH_ORDER = ("amd64", "arm64")


@dataclass
class ArchContent:
    ebpf: bytes | None = None
    wasm: bytes | None = None
    btfgen: bytes | None = None


@dataclass
class BuiltImage:
    index: dict[str, Any]
    index_bytes: bytes
    index_descriptor: dict[str, Any]
    blobs: list[bytes] = field(repr=False)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return str(self.index_descriptor["digest"])


def created_timestamp(env: Mapping[str, str] | None = None) -> str:
    """RFC 3339 creation time: SOURCE_DATE_EPOCH in UTC if set, else local time."""
    env = os.environ if env is None else env
    sde = env.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            secs = int(sde)
        except ValueError:
            raise UsageError(
                f"SOURCE_DATE_EPOCH={sde!r} is not an integer number of seconds"
            ) from None
        t = _dt.datetime.fromtimestamp(secs, _dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    t = _dt.datetime.now().astimezone().replace(microsecond=0)
    s = t.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def annotations_from_metadata(
    metadata: Mapping[str, Any] | None,
    created: str,
    ig_builder_version: str | None = None,
) -> dict[str, str]:
    """The annotation map ig puts on config, manifests, index and the store entry."""
    if metadata is None:
        bare = {mt.CREATED: created}
        if ig_builder_version:
            bare[mt.IG_BUILDER_VERSION] = ig_builder_version
        return bare
    ann: dict[str, str] = {
        mt.TITLE: _s(metadata.get("name")),
        mt.DESCRIPTION: _s(metadata.get("description")),
        mt.URL: _s(metadata.get("homepageURL")),
        mt.DOCUMENTATION: _s(metadata.get("documentationURL")),
        mt.SOURCE: _s(metadata.get("sourceURL")),
        mt.BUILDER_VERSION: __version__,
    }
    if ig_builder_version:
        ann[mt.IG_BUILDER_VERSION] = ig_builder_version
    extra = metadata.get("annotations") or {}
    if isinstance(extra, Mapping):
        for k, v in extra.items():
            ann[str(k)] = _s(v)
    ann[mt.CREATED] = created
    return ann


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def descriptor(
    media_type: str,
    data: bytes,
    annotations: Mapping[str, str] | None = None,
    platform: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OCI descriptor of ``data`` (annotations sorted as Go writes them)."""
    d: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        d["annotations"] = sorted_map(dict(annotations))
    if platform:
        d["platform"] = {"architecture": platform["architecture"], "os": platform["os"]}
    return d


def build_image(
    metadata_bytes: bytes | None,
    metadata: Mapping[str, Any] | None,
    content: Mapping[str, ArchContent],
    created: str,
    ig_builder_version: str | None = None,
) -> BuiltImage:
    """Create index, manifests and config descriptors for ``content`` (arch -> layers)."""
    if not content:
        raise UsageError("nothing to package: no architecture was built")
    ann = annotations_from_metadata(metadata, created, ig_builder_version)
    blobs: list[bytes] = []
    if metadata_bytes is not None:
        config_desc = descriptor(mt.CONFIG, metadata_bytes, ann)
        blobs.append(metadata_bytes)
    else:
        config_desc = {
            "mediaType": mt.EMPTY,
            "digest": mt.EMPTY_DIGEST,
            "size": 2,
            "annotations": sorted_map(ann),
            "data": mt.EMPTY_DATA_B64,
        }
        blobs.append(b"{}")

    manifest_descs: list[dict[str, Any]] = []
    manifests: dict[str, dict[str, Any]] = {}
    for arch in sorted(content, key=lambda a: (ARCH_ORDER.index(a) if a in ARCH_ORDER else 99, a)):
        c = content[arch]
        layers = []
        for media, data in ((mt.EBPF, c.ebpf), (mt.WASM, c.wasm), (mt.BTFGEN, c.btfgen)):
            if data is not None:
                layers.append(descriptor(media, data))
                blobs.append(data)
        manifest = {
            "schemaVersion": 2,
            "artifactType": mt.ARTIFACT_TYPE,
            "config": config_desc,
            "layers": layers,
            "annotations": sorted_map(ann),
        }
        mbytes = go_json(manifest)
        blobs.append(mbytes)
        manifests[arch] = manifest
        manifest_descs.append(
            descriptor(mt.MANIFEST, mbytes, ann, {"architecture": arch, "os": "linux"})
        )

    index = {
        "schemaVersion": 2,
        "mediaType": mt.INDEX,
        "manifests": manifest_descs,
        "annotations": manifest_descs[0].get("annotations", {}),
    }
    ibytes = go_json(index)
    blobs.append(ibytes)
    index_desc = descriptor(mt.INDEX, ibytes, ann)
    return BuiltImage(index, ibytes, index_desc, blobs, manifests)
