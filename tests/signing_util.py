"""Helpers for signing tests: small images put straight into a store, key pairs, raw edits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.toolchain.oci.assemble import ArchContent, build_image
from gadgetsmith.toolchain.oci.store import open_store
from gadgetsmith.toolchain.signing import keys as K
from gadgetsmith.toolchain.signing import signature_tag

PASSWORD = "correct horse"
ENV = {"GADGET_PASSWORD": PASSWORD}


def make_image(store_path: Path, reference: str, seed: str = "a") -> str:
    """Store a two-arch gadget image (config + one eBPF layer per arch); return its digest."""
    meta = f"name: tiny-{seed}\ndescription: test image {seed}\n".encode()
    content = {
        "amd64": ArchContent(ebpf=b"\x7fELF\x02\x01\x01 amd64 object " + seed.encode()),
        "arm64": ArchContent(ebpf=b"\x7fELF\x02\x01\x01 arm64 object " + seed.encode()),
    }
    img = build_image(meta, {"name": f"tiny-{seed}"}, content, "2026-11-23T00:00:00Z")
    open_store(store_path).add_image(img.blobs, img.index_descriptor, reference)
    return img.digest


def key_pair(tmp_path: Path, name: str = "cosign") -> tuple[Path, Path]:
    return K.write_key_pair(tmp_path / name, PASSWORD.encode())


def blob_path(store_path: Path, digest: str) -> Path:
    return store_path / "blobs" / "sha256" / digest.split(":", 1)[1]


def read_json(store_path: Path, digest: str) -> dict[str, Any]:
    return json.loads(blob_path(store_path, digest).read_bytes())


def index_entry(store_path: Path, ref_name: str) -> dict[str, Any]:
    for d in json.loads((store_path / "index.json").read_text())["manifests"]:
        if (d.get("annotations") or {}).get(mt.REF_NAME) == ref_name:
            return d
    raise KeyError(ref_name)


def sig_manifest(store_path: Path, digest: str) -> tuple[dict[str, Any], bytes]:
    desc = index_entry(store_path, signature_tag(digest))
    raw = blob_path(store_path, desc["digest"]).read_bytes()
    return json.loads(raw), raw


def put_sig_manifest(store_path: Path, digest: str, raw: bytes, blobs: list[bytes] = ()) -> None:
    """Point the signature tag of ``digest`` at the raw manifest ``raw`` (test tampering)."""
    st = open_store(store_path)
    with st.lock():
        for b in blobs:
            st.put_blob(b)
        st.put_blob(raw)
        st.set_tag(signature_tag(digest),
                   {"mediaType": mt.MANIFEST, "digest": sha256_digest(raw), "size": len(raw)})


def flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))
