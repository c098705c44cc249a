"""Verify by default: when the policy names public keys for a reference, pull, import and
run refuse an image whose signature does not verify, before it is stored or loaded.

``--no-verify`` skips the check with a loud warning on stderr (never silently).

Each check first asks the policy whether it names keys for the image (no cryptography
involved); only then is :mod:`~gadgetsmith.toolchain.signing.keyed` (the keys, the
verifiers and cryptography) imported. So a pull,
import or run under a policy without keys pays nothing for signing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.oci.reference import Reference, parse
from gadgetsmith.toolchain.oci.sigtags import is_signature_tag, referrers_tag, signature_tag
from gadgetsmith.toolchain.oci.store import Store
from gadgetsmith.toolchain.policy import Policy

if TYPE_CHECKING:
    from gadgetsmith.toolchain.registry.transfer import BlobReader, StagedCheck
    from gadgetsmith.toolchain.signing.keys import PublicKey
    from gadgetsmith.toolchain.signing.local import VerifyResult


def _keyed() -> ModuleType:
    """:mod:`~gadgetsmith.toolchain.signing.keyed`, imported once a policy names keys (the one
    import of cryptography on the pull, import and run paths)."""
    from gadgetsmith.toolchain.signing import keyed

    return keyed


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def policy_keys(policy: Policy, ref: Reference | str, digest: str | None = None) -> list[PublicKey]:
    """The public keys the policy requires for ``ref`` (none: no signature is required)."""
    pems = policy.required_keys(ref, digest)
    if not pems:
        return []
    load = _keyed().load_public_key
    return [load(p.encode(), f"{policy.source} key {i + 1}") for i, p in enumerate(pems)]


def policy_identities(policy: Policy, ref: Reference | str, digest: str | None = None) -> set[str] | None:
    """Repository names a signature of ``ref`` may name under the policy (None: any)."""
    return policy.signature_identities(ref, digest)


def skip_warning(action: str, reference: str, policy: Policy, n_keys: int) -> str:
    return (
        f"WARNING: signature verification DISABLED (--no-verify): {policy.source} requires "
        f"{reference} to be signed by one of {n_keys} key(s); {action} it UNVERIFIED"
    )


def _run_keys(store: Store, ref: Reference | None, digest: str, policy: Policy) -> list[PublicKey]:
    if ref is not None:
        return policy_keys(policy, ref, digest)
    # by digest only: every local name of that digest brings its policy keys along, so
    # running by digest cannot sidestep a signature requirement
    keys: list[PublicKey] = []
    for name in store.names_of(digest):
        for k in policy_keys(policy, name, digest):
            if all(k.pem() != x.pem() for x in keys):
                keys.append(k)
    return keys


def verify_local_for_run(
    store: Store,
    text: str,
    ref: Reference | None,
    desc: dict[str, Any],
    *,
    policy: Policy,
    no_verify: bool = False,
    warn: Callable[[str], None] = _stderr,
) -> VerifyResult | None:
    """Check the local image ``text`` (``ref, desc``: what ``store.lookup`` found, so the
    image checked is the one loaded) before `gadget run` loads it. Returns the
    VerifyResult, or None when the policy requires no signature (or --no-verify skipped it)."""
    keys = _run_keys(store, ref, desc["digest"], policy)
    if not keys:
        return None
    label = str(ref) if ref else text
    if no_verify:
        warn(skip_warning("running", label, policy, len(keys)))
        return None
    identities: set[str] | None = None
    if ref is not None:
        identities = policy_identities(policy, ref, desc["digest"])
    else:
        for name in store.names_of(desc["digest"]):
            allowed = policy_identities(policy, name, desc["digest"])
            if allowed is None:
                identities = None
                break
            identities = (identities or set()) | allowed
    result: VerifyResult = _keyed().verify_in_store(
        store, ref, desc, keys, label=label, ignore_identity=identities is None,
        identities=identities)
    for w in result.warnings:
        warn(f"warning: {w}")
    return result


def pull_check(policy: Policy, ref: Reference, *, no_verify: bool = False,
               warn: Callable[[str], None] | None = None) -> StagedCheck | None:
    """The staged-download check for a pull of ``ref``, or None when the policy asks for no
    signature (or --no-verify skipped it, loudly). The ``verifier`` of
    :func:`~gadgetsmith.toolchain.registry.api.pull_image`."""
    keys = policy_keys(policy, ref, ref.digest)
    if not keys:
        return None
    if no_verify:
        (warn or _stderr)(skip_warning("pulling", str(ref), policy, len(keys)))
        return None
    check: StagedCheck = _keyed().pull_verifier(
        ref, keys, identities=policy_identities(policy, ref, ref.digest))
    return check


def check_staged_images(policy: Policy, tags: list[tuple[str, dict[str, Any]]], read: BlobReader,
                        store: Store, *, no_verify: bool = False,
                        warn: Callable[[str], None] | None = None) -> None:
    """`gadget import`: verify each image of ``tags`` (reference, descriptor) that the
    policy names keys for, from staged bytes (``read``); signature manifests come from
    the same ``tags`` (the archive) or else the store. Raises before anything is stored."""
    sigs = {t: d for t, d in tags if is_signature_tag(t)}
    for tag, desc in tags:
        if is_signature_tag(tag):
            continue
        ref = parse(tag)
        keys = policy_keys(policy, ref, desc.get("digest"))
        if not keys:
            continue
        if no_verify:
            (warn or _stderr)(skip_warning("importing", tag, policy, len(keys)))
            continue
        keyed = _keyed()
        local = keyed.StoreSource(store)
        sd = sigs.get(signature_tag(desc["digest"]))
        sig_raw: bytes | None
        if sd is not None:
            sig_raw = read(sd["digest"], True)
        else:
            sig_raw = local.signature_manifest(desc["digest"])
        rd = sigs.get(referrers_tag(desc["digest"])) or local.tagged(referrers_tag(desc["digest"]))
        ref_raw = read(rd["digest"], True) if rd is not None else None
        keyed.pull_verifier(ref, keys, tag, where="the archive or the local store",
                      identities=policy_identities(policy, ref, desc.get("digest")))(
            read, desc, sig_raw, ref_raw)
