"""Registry capability preflight: does this registry take gadget images and referrers?

Known failures across peers (ECR and older registries rejecting custom artifact/config
media types, registries without the OCI 1.1 referrers API) are detected here before a
real push, so callers can fall back instead of failing half-way:

* ``referrers``: ``GET /v2/<repo>/referrers/<digest>`` answers an image index -> the API
  exists; otherwise signatures use cosign's tag scheme (``sha256-<hex>.sig``).
* ``mediaTypes``: a tiny gadget-shaped image (gadget config + eBPF layer media types,
  ``artifactType``, wrapped in an OCI index) is pushed under a scratch tag and deleted
  again where the registry allows deletes.
"""

from __future__ import annotations

import io
import json
from functools import partial
from typing import Any

from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.toolchain.errors import GadgetError
from gadgetsmith.toolchain.registry.client import RegistryClient

PREFLIGHT_TAG = "gadgetsmith-preflight"


def _desc(media: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media, "digest": sha256_digest(data), "size": len(data)}


def _enc(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def supports_referrers(client: RegistryClient, repo: str) -> bool:
    """Whether the registry serves the OCI 1.1 referrers API for ``repo``."""
    probe = "sha256:" + "0" * 64
    return client.referrers(repo, probe) is not None


def probe_media_types(client: RegistryClient, repo: str) -> tuple[bool, str]:
    """Push a minimal gadget image; returns (accepted, detail)."""
    config = b"name: preflight\n"
    layer = b"\x7fELF preflight"
    for data in (config, layer):
        d = sha256_digest(data)
        if not client.blob_head(repo, d):
            client.blob_upload(repo, d, len(data), partial(io.BytesIO, data))
    manifest = _enc({"schemaVersion": 2, "artifactType": mt.ARTIFACT_TYPE,
                     "config": _desc(mt.CONFIG, config), "layers": [_desc(mt.EBPF, layer)]})
    mdesc = _desc(mt.MANIFEST, manifest) | {"platform": {"architecture": "amd64", "os": "linux"}}
    index = _enc({"schemaVersion": 2, "mediaType": mt.INDEX, "manifests": [mdesc]})
    try:
        client.manifest_put(repo, mdesc["digest"], manifest, mt.MANIFEST)
        client.manifest_put(repo, PREFLIGHT_TAG, index, mt.INDEX)
    except GadgetError as e:
        return False, str(e)
    for ref in (sha256_digest(index), mdesc["digest"]):
        try:
            client.send("DELETE", f"/v2/{repo}/manifests/{ref}", scope=client.scope(repo, True),
                        ok=(202, 200), allow=(404, 405, 400, 401, 403)).close()
        except GadgetError:
            pass
    return True, "gadget config/layer media types, artifactType and image indexes accepted"


def preflight(client: RegistryClient, repo: str = "gadgetsmith/preflight", *,
              write: bool = True) -> dict[str, Any]:
    """Check a registry; returns a report with ``messages`` to show the user."""
    r = client.ping()
    report: dict[str, Any] = {
        "host": client.host,
        "scheme": client.scheme,
        "apiVersion": r.headers.get("Docker-Distribution-API-Version", ""),
        "repository": repo,
        "mediaTypes": None,
        "referrers": False,
        "signatureScheme": "tag",
        "messages": [],
    }
    r.close()
    if write:
        ok, detail = probe_media_types(client, repo)
        report["mediaTypes"] = ok
        report["messages"].append(("accepts gadget images: " if ok else
                                   "does NOT accept gadget images: ") + detail)
    report["referrers"] = supports_referrers(client, repo)
    if report["referrers"]:
        report["signatureScheme"] = "referrers+tag"
        report["messages"].append("OCI 1.1 referrers API available")
    else:
        report["messages"].append(
            "no OCI 1.1 referrers API: signatures fall back to cosign's tag scheme "
            "(sha256-<hex>.sig), which ig reads too"
        )
    return report
