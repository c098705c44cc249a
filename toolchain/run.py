"""What `gadget run IMAGE` runs: the gadget source behind IMAGE.

A directory is a gadget's source, built for this host's architecture first; a ``.o``
file is a compiled object; anything else is an image of the local store, allowed by the
policy's allowlist and signed as the policy requires. Each is a runtime
:class:`~gadgetsmith.runtime.pipeline.source.GadgetSource` that ``Gadget`` loads.

The policy applies to every kind: a directory or a ``.o`` has no name or signature to
check, so a policy that restricts what runs refuses them unless it allows local sources
(:meth:`~gadgetsmith.toolchain.policy.Policy.check_local_source`). `gadget run`,
`gadget test` and Python callers all choose the kind here, so none of them skips it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gadgetsmith.runtime.bpf.btfgen import needs_bundle
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.pipeline.source import GadgetSource, ObjectFile, StoredImage
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.oci.store import open_store
from gadgetsmith.toolchain.policy import Policy, check_local_run, load_policy
from gadgetsmith.toolchain.signing.enforce import verify_local_for_run


class DirectorySource:
    """A gadget source directory: built (this host's architecture only, nothing stored)
    when loaded; its gadget.yaml (or build.yaml's ``metadata``) is the metadata."""

    def __init__(self, path: str | Path, no_cache: bool = False) -> None:
        self.path = Path(path)
        self.no_cache = no_cache  # compile even when the build cache has the object
        self._wasm: bytes | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    def load(self) -> tuple[bytes, dict[str, Any]]:
        # the build driver (clang discovery, the SDK) only when a directory is run
        from gadgetsmith.toolchain.build.driver import build_for_host_with_wasm

        data, metadata, self._wasm = build_for_host_with_wasm(self.path, self.no_cache)
        return data, metadata

    def btfgen_layer(self) -> bytes | None:
        return None  # run from source: the build has no btfgen layer

    def wasm_layer(self) -> bytes | None:
        """The module the build made (after :meth:`load`)."""
        return self._wasm


class CheckedImage:
    """An image of the local store that the policy allows and whose signature it checks.

    The image is looked up once: the descriptor found is the one the allowlist checks and
    the one whose object is loaded, so a tag moved meanwhile cannot swap in another image.
    """

    def __init__(self, store: Path | None, text: str, policy: Policy, no_verify: bool = False) -> None:
        self.store = store
        self.text = text
        self.policy = policy
        self.no_verify = no_verify
        self._image: StoredImage | None = None  # the checked image, once loaded

    @property
    def name(self) -> str:
        return self.text

    def load(self) -> tuple[bytes, dict[str, Any]]:
        store = open_store(self.store)
        try:
            ref, desc = store.lookup(self.text)
        except NotFoundError:
            raise NotFoundError(f"unknown reference {self.text!r}: build or pull it first "
                                "(see 'gadget list')") from None
        check_local_run(store, ref, desc, self.policy)  # allowlist first, then signatures
        verify_local_for_run(store, self.text, ref, desc, policy=self.policy,
                             no_verify=self.no_verify)
        self._image = StoredImage(self.text, store.root, descriptor=desc)
        try:
            return self._image.load()
        except RuntimeGadgetError as e:
            raise GadgetError(str(e)) from None

    def btfgen_layer(self) -> bytes | None:
        """The checked image's btfgen layer (after :meth:`load`)."""
        if self._image is None:
            return None
        try:
            return self._image.btfgen_layer()
        except RuntimeGadgetError as e:
            raise GadgetError(str(e)) from None

    def wasm_layer(self) -> bytes | None:
        """The checked image's WASM module (after :meth:`load`)."""
        if self._image is None:
            return None
        try:
            return self._image.wasm_layer()
        except RuntimeGadgetError as e:
            raise GadgetError(str(e)) from None


def load_for_run(store: Path | None, text: str, policy: Policy, no_verify: bool = False
                 ) -> tuple[bytes, dict[str, Any], bytes | None, bytes | None]:
    """The object, gadget.yaml, on a kernel without BTF the btfgen layer, and the WASM
    module of a local image the policy allows (what `gadget run IMAGE` loads; `gadget
    test` loads images so)."""
    image = CheckedImage(store, text, policy, no_verify)
    data, metadata = image.load()
    return data, metadata, image.btfgen_layer() if needs_bundle() else None, image.wasm_layer()


def local_kind(image: str) -> str | None:
    """``"dir"`` or ``"object"`` when ``image`` names a local source, else None (an image).

    A file is an object when it ends in ``.o`` or is an ELF file; any other file, or a
    path (``/x``, ``./x``, ``../x``, ``~/x``) that does not exist, is a UsageError that
    says so (exit 2) instead of a complaint about an invalid image reference."""
    local = Path(image)
    if local.is_dir():
        return "dir"
    if local.is_file():
        if image.endswith(".o") or _is_elf(local):
            return "object"
        raise UsageError(f"{image} is a file but not an eBPF object (not ELF): give a compiled "
                         "object (FILE.o), a gadget source directory or an image reference")
    if image.startswith(("/", "./", "../", "~")) or image.endswith(".o"):
        raise UsageError(f"{image}: no such file or directory (a gadget directory, a .o file "
                            "or an image reference was expected)")
    return None


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def resolve_source(image: str, store: Path | None = None, policy: Policy | Path | str | None = None,
                   no_verify: bool = False, no_cache: bool = False) -> GadgetSource:
    """The source `gadget run IMAGE` means (nothing is read yet but the policy file).
    ``policy``: a loaded Policy, or the --policy file (default: the applicable one, see
    :func:`~gadgetsmith.toolchain.policy.load_policy`). A local source the policy refuses
    raises PolicyDenied here, before anything is built or read."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    kind = local_kind(image)
    if kind is not None:
        pol.check_local_source(kind, image)
        return DirectorySource(image, no_cache) if kind == "dir" else ObjectFile(image)
    return CheckedImage(store, image, pol, no_verify)


__all__ = ["CheckedImage", "DirectorySource", "load_for_run", "local_kind", "resolve_source"]
