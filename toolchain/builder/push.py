"""`gadget builder push`: the builder image to a registry, with gadgetsmith's own client."""

from __future__ import annotations

from gadgetsmith.runtime.oci.reference import InvalidReference, parse
from gadgetsmith.toolchain.builder.image import MANIFEST_MEDIA_TYPE, BuilderImage
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.policy import PUSH
from gadgetsmith.toolchain.registry.api import RemoteOptions


def push_builder(image: BuilderImage, dest: str, options: RemoteOptions | None = None) -> str:
    """Upload the layers and config the registry lacks, then the manifest under ``dest``'s
    tag; returns the manifest digest (``dest@digest`` pulls exactly this image)."""
    try:
        ref = parse(dest)
    except InvalidReference as e:
        raise UsageError(f"DEST {dest!r}: {e}") from None
    if ref.digest:
        raise UsageError(f"DEST {dest!r}: push to a tag, not a digest")
    options = options or RemoteOptions()
    options.policy.check(PUSH, ref)
    client = options.client(ref.domain)
    repo = ref.repository
    blobs = [(la.digest, la.size, la.path) for la in image.layers]
    for digest, size, path in blobs:
        if not client.blob_head(repo, digest):
            client.blob_upload(repo, digest, size, lambda p=path: p.open("rb"))  # type: ignore[misc]
    if not client.blob_head(repo, image.config_digest):
        data = image.config
        client.blob_upload(repo, image.config_digest, len(data), lambda: _Bytes(data))
    return client.manifest_put(repo, ref.tag or "latest", image.manifest(), MANIFEST_MEDIA_TYPE)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1, /) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk = self.data[self.pos:end]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        pass
