"""source: where the gadget comes from, as eBPF object bytes and its metadata.

A :class:`GadgetSource` is anything with a ``name`` (for messages), a ``load()``
giving ``(object bytes for this host's architecture, gadget.yaml as a dict)``, a
``btfgen_layer()`` (the image's BTF for kernels without it, or None) and a
``wasm_layer()`` (the gadget's WASM module, or None; called after ``load()``). The
runtime has sources for an object in memory, a ``.o`` file and an image in the local
store; the toolchain adds a source directory (built first) and images checked against a
policy (``gadgetsmith.toolchain.run``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gadgetsmith.runtime.bpf import btfgen
from gadgetsmith.runtime.bpf.loader import host_arch
from gadgetsmith.runtime.errors import (
    InvalidReference,
    LayoutError,
    RuntimeGadgetError,
    UnknownReference,
)
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.config import read_config
from gadgetsmith.runtime.oci.layout import Layout, default_store_path
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import SOURCE, Stage


@runtime_checkable
class GadgetSource(Protocol):
    """Object bytes and metadata of a gadget (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def load(self) -> tuple[bytes, dict[str, Any]]: ...

    def btfgen_layer(self) -> bytes | None: ...

    def wasm_layer(self) -> bytes | None: ...


class ObjectBytes:
    """An eBPF object already in memory (``wasm``: its gadget's WASM module)."""

    def __init__(self, data: bytes, metadata: dict[str, Any] | None = None,
                 name: str = "eBPF object", wasm: bytes | None = None) -> None:
        self.data = data
        self.metadata = metadata or {}
        self._name = name
        self.wasm = wasm

    @property
    def name(self) -> str:
        return self._name

    def load(self) -> tuple[bytes, dict[str, Any]]:
        return self.data, self.metadata

    def btfgen_layer(self) -> bytes | None:
        return None

    def wasm_layer(self) -> bytes | None:
        return self.wasm


class ObjectFile:
    """A compiled ``.o`` file (no gadget.yaml unless ``metadata`` is given; ``wasm``: its
    gadget's WASM module)."""

    def __init__(self, path: str | Path, metadata: dict[str, Any] | None = None,
                 wasm: bytes | None = None) -> None:
        self.path = Path(path)
        self.metadata = metadata or {}
        self.wasm = wasm

    @property
    def name(self) -> str:
        return str(self.path)

    def load(self) -> tuple[bytes, dict[str, Any]]:
        try:
            return self.path.read_bytes(), self.metadata
        except OSError as e:
            raise RuntimeGadgetError(f"{self.path}: {e.strerror}") from None

    def btfgen_layer(self) -> bytes | None:
        return None

    def wasm_layer(self) -> bytes | None:
        return self.wasm


class StoredImage:
    """An image of the local store (``store``, default the user's), for this host's
    architecture. ``descriptor``: the image's index descriptor when the caller resolved
    ``ref`` already (which then only names the image in errors), so the image loaded is
    the one the caller checked even if the tag moves meanwhile. ``metadata`` replaces the
    image's own gadget.yaml."""

    def __init__(self, ref: str, store: str | Path | None = None,
                 descriptor: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self.ref = ref
        self.store = Path(store) if store else default_store_path()
        self.descriptor = descriptor
        self.metadata = metadata

    @property
    def name(self) -> str:
        return self.ref

    def load(self) -> tuple[bytes, dict[str, Any]]:
        data, metadata = load_image(self.ref, self.store, self.descriptor)
        return data, self.metadata or metadata

    def btfgen_layer(self) -> bytes | None:
        return load_btfgen_layer(self.ref, self.store, self.descriptor)

    def wasm_layer(self) -> bytes | None:
        return load_layer(self.ref, mt.WASM, self.store, self.descriptor)


def _manifest(layout: Layout, ref: str, descriptor: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest of ``ref`` (or ``descriptor``) for this host's architecture."""
    try:
        layout.check()
        desc = descriptor if descriptor is not None else layout.resolve(ref)[1]
        return layout.read_json(layout.manifest_for_arch(desc, host_arch())["digest"])
    except UnknownReference:
        raise RuntimeGadgetError(
            f"unknown reference {ref!r}: build or pull it first (see 'gadget list')") from None
    except (LayoutError, InvalidReference) as e:
        raise RuntimeGadgetError(f"{ref}: {e}") from None


def load_image(ref: str, store: str | Path | None = None,
               descriptor: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """eBPF object and metadata of an image in the local store, for this host's arch
    (``descriptor``: see :class:`StoredImage`)."""
    layout = Layout(Path(store) if store else default_store_path())
    manifest = _manifest(layout, ref, descriptor)
    metadata: dict[str, Any] = {}
    cfg = manifest.get("config") or {}
    if cfg.get("mediaType") == mt.CONFIG:
        try:
            metadata = read_config(str(cfg["digest"]), layout.read_blob)
        except LayoutError as e:
            raise RuntimeGadgetError(f"{ref}: {e}") from None
    for layer in manifest.get("layers") or []:
        if layer.get("mediaType") == mt.EBPF:
            return layout.read_blob(layer["digest"]), metadata
    raise RuntimeGadgetError(f"{ref}: the image has no eBPF program for {host_arch()}")


def load_btfgen_layer(ref: str, store: str | Path | None = None,
                      descriptor: dict[str, Any] | None = None) -> bytes | None:
    """The btfgen layer of an image for this host's arch, or None when it has none."""
    return load_layer(ref, mt.BTFGEN, store, descriptor)


def load_layer(ref: str, media_type: str, store: str | Path | None = None,
               descriptor: dict[str, Any] | None = None) -> bytes | None:
    """The layer of ``media_type`` of an image for this host's arch, or None."""
    layout = Layout(Path(store) if store else default_store_path())
    for layer in _manifest(layout, ref, descriptor).get("layers") or []:
        if layer.get("mediaType") == media_type:
            try:
                return layout.read_blob(layer["digest"])
            except LayoutError as e:
                raise RuntimeGadgetError(f"{ref}: {e}") from None
    return None


def open_source(image: str | Path | bytes | GadgetSource, store: str | Path | None = None,
                metadata: dict[str, Any] | None = None) -> GadgetSource:
    """The source ``Gadget(image)`` means: bytes, a ``.o`` path, an image reference, or a
    source as is. ``metadata`` replaces the gadget.yaml the source has."""
    if isinstance(image, bytes):
        return ObjectBytes(image, metadata)
    if isinstance(image, Path) or (isinstance(image, str) and image.endswith(".o")
                                   and Path(image).is_file()):
        return ObjectFile(image, metadata)
    if isinstance(image, str):
        return StoredImage(image, store, metadata=metadata)
    return image


class SourceStage(Stage):
    """Loads the source: ``ctx.data`` and ``ctx.metadata``, its WASM module
    (``ctx.wasm``); on a kernel without BTF, the source's btfgen layer too
    (``ctx.btfgen_layer``, unless the caller gave one)."""

    name = "source"
    priority = SOURCE

    def __init__(self, source: GadgetSource) -> None:
        self.source = source

    def pre_start(self, ctx: RunContext) -> None:
        ctx.data, ctx.metadata = self.source.load()
        wasm_layer = getattr(self.source, "wasm_layer", None)  # older sources may lack it
        if ctx.wasm is None and wasm_layer is not None:
            ctx.wasm = wasm_layer()
        if ctx.btfgen_layer is None and btfgen.needs_bundle():
            ctx.btfgen_layer = self.source.btfgen_layer()

    def describe(self) -> str:
        return f"source({self.source.name})"


__all__ = ["GadgetSource", "ObjectBytes", "ObjectFile", "SourceStage", "StoredImage",
           "load_btfgen_layer", "load_image", "load_layer", "open_source"]
