"""Glue the CLI modules call (kept here so cli_*.py stay parsing and printing only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from gadgetsmith.runtime.oci.reference import Reference
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.oci.store import open_store
from gadgetsmith.toolchain.policy import PUSH, parse_destination, parse_reference
from gadgetsmith.toolchain.registry.api import RemoteOptions
from gadgetsmith.toolchain.signing import sigmanifest as sm
from gadgetsmith.toolchain.signing import signature_tag
from gadgetsmith.toolchain.signing.keys import PublicKey, read_private_key
from gadgetsmith.toolchain.signing.local import (
    VerifyResult,
    digests_to_sign,
    make_layers,
    merge_layers,
    verify_in_store,
)
from gadgetsmith.toolchain.signing.remote import fetch_signature_into_store, verify_remote
from gadgetsmith.toolchain.signing.source import StoreSource, local_layers, naming
from gadgetsmith.toolchain.signing.verify import check_graph


def sign_before_push(image: str, dest: str | None, key: Path, recursive: bool,
                     store_path: Path | None, options: RemoteOptions,
                     warn: Callable[[str], None]) -> dict[str, list[sm.SignatureLayer]]:
    """`gadget push --sign`: signatures of the local image under the name it is pushed to,
    for the push only (tag -> layers): the destination's ``.sig`` gets the new signature
    plus the local ones already naming it (another key's, from `gadget sign`), so one layer
    unless the image has several signers there, which is what ig accepts; the local store
    is not changed (so its ``.sig`` never piles up one layer per destination)."""
    target = parse_destination(dest) if dest else parse_reference(image)
    options.policy.check(PUSH, target)  # refused pushes sign nothing
    return push_signatures(image, target, read_private_key(key), recursive, store_path)


def push_signatures(image: str, target: Reference, private_key: ec.EllipticCurvePrivateKey,
                    recursive: bool, store_path: Path | None) -> dict[str, list[sm.SignatureLayer]]:
    """The signature layers (tag -> layers) local ``image`` gets under ``target``'s name for
    a push, signed with a key already read (see :func:`sign_before_push`; the policy is the
    caller's)."""
    store = open_store(store_path)
    ref, desc = store.lookup(image)
    label = str(ref) if ref else image
    source = StoreSource(store)
    manifests = check_graph(source.reader(), desc, label)
    digests = digests_to_sign(desc, manifests, recursive)
    signer = PublicKey(private_key.public_key(), "signing key")
    out = {}
    for d, layer in make_layers(private_key, target.name, digests, {}).items():
        local = local_layers(source, source.signature_manifest(d)) or []
        layers, _ = merge_layers(naming(local, target.name), layer, signer)
        out[signature_tag(d)] = layers
    return out


def lookup_local(store_path: Path | None, image: str) -> tuple[Reference | None, dict[str, Any]] | None:
    """(reference, descriptor) of a local image, or None when the store does not have it."""
    try:
        return open_store(store_path).lookup(image)
    except NotFoundError:
        return None


def verify_image(store_path: Path | None, image: str, keys: list[PublicKey], *, recursive: bool,
                 ignore_identity: bool, offline: bool, remote: bool, options: RemoteOptions,
                 warn: Callable[[str], None]) -> VerifyResult:
    """`gadget verify`: the local store first, the registry for what is not there."""
    if remote:
        if offline:
            raise UsageError("--remote and --offline contradict each other: drop one")
        return verify_remote(parse_reference(image), keys, options, recursive=recursive,
                             ignore_identity=ignore_identity)
    store = open_store(store_path)
    try:
        ref, desc = store.lookup(image)
    except NotFoundError:
        if offline:
            raise
        return verify_remote(parse_reference(image), keys, options, recursive=recursive,
                             ignore_identity=ignore_identity)
    manifests = None
    if not offline and ref is not None:
        source = StoreSource(store)
        manifests = check_graph(source.reader(), desc, str(ref))
        missing = [d for d in digests_to_sign(desc, manifests, recursive)
                   if source.signature_descriptor(d) is None]
        if missing:
            try:
                # a best-effort lookup: one try, so an unreachable registry costs little
                options.retries = 0
                fetch_signature_into_store(store, ref, missing, options)
            except GadgetError as e:
                warn(f"could not fetch signatures from {ref.domain} ({e.message}); verifying offline")
    return verify_in_store(store, ref, desc, keys, recursive=recursive,
                           ignore_identity=ignore_identity, manifests=manifests)
