"""Verify by default: when the policy names public keys for a reference, pull and run
refuse an image whose signature does not verify, before it is stored or loaded.

``--no-verify`` skips the check with a loud warning on stderr (never silently).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from gadgetsmith.runtime.oci.reference import Reference
from gadgetsmith.toolchain.signing import is_signature_tag
from gadgetsmith.toolchain.signing.keys import PublicKey, load_public_key


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def policy_keys(policy, ref: Reference | str, digest: str | None = None) -> list[PublicKey]:
    pems = policy.required_keys(ref, digest)
    return [load_public_key(p.encode(), f"{policy.source} key {i + 1}") for i, p in enumerate(pems)]


def skip_warning(action: str, reference: str, policy, n_keys: int) -> str:
    return (
        f"WARNING: signature verification DISABLED (--no-verify): {policy.source} requires "
        f"{reference} to be signed by one of {n_keys} key(s); {action} it UNVERIFIED"
    )


def verify_local_for_run(
    store,
    text: str,
    ref: Reference | None,
    desc: dict,
    *,
    policy,
    no_verify: bool = False,
    warn: Callable[[str], None] = _stderr,
):
    """Check the local image ``text`` (``ref, desc``: what ``store.lookup`` found, so the
    image checked is the one loaded) before `gadget run` loads it. Returns the
    VerifyResult, or None when the policy requires no signature (or --no-verify skipped it)."""
    from gadgetsmith.toolchain.signing.local import verify_in_store

    if ref is not None:
        keys = policy_keys(policy, ref, desc["digest"])
    else:
        # by digest only: every local name of that digest brings its policy keys along, so
        # running by digest cannot sidestep a signature requirement
        keys = []
        for name in store.names_of(desc["digest"]):
            for k in policy_keys(policy, name, desc["digest"]):
                if all(k.pem() != x.pem() for x in keys):
                    keys.append(k)
    if not keys:
        return None
    label = str(ref) if ref else text
    if no_verify:
        warn(skip_warning("running", label, policy, len(keys)))
        return None
    result = verify_in_store(store, ref, desc, keys, label=label)
    for w in result.warnings:
        warn(f"warning: {w}")
    return result


def pull_check(policy, ref: Reference, *, no_verify: bool = False,
               warn: Callable[[str], None] | None = None):
    """The staged-download check for a pull of ``ref``, or None when the policy asks for no
    signature (or --no-verify skipped it, loudly)."""
    keys = policy_keys(policy, ref, ref.digest)
    if not keys:
        return None
    if no_verify:
        (warn or _stderr)(skip_warning("pulling", str(ref), policy, len(keys)))
        return None
    from gadgetsmith.toolchain.signing.remote import pull_verifier

    return pull_verifier(ref, keys)


def check_staged_images(policy, tags, read, store, *, no_verify: bool = False,
                        warn: Callable[[str], None] | None = None) -> None:
    """`gadget import`: verify each image of ``tags`` (reference, descriptor) that the
    policy names keys for, from staged bytes (``read``); signature manifests come from
    the same ``tags`` (the archive) or else the store. Raises before anything is stored."""
    from gadgetsmith.runtime.oci.reference import parse
    from gadgetsmith.toolchain.signing import signature_tag
    from gadgetsmith.toolchain.signing.local import StoreSource
    from gadgetsmith.toolchain.signing.remote import pull_verifier

    sigs = {t: d for t, d in tags if is_signature_tag(t)}
    local = StoreSource(store)
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
        sd = sigs.get(signature_tag(desc["digest"]))
        if sd is not None:
            sig_raw = read(sd["digest"], True)
        else:
            sig_raw = local.signature_manifest(desc["digest"])
        pull_verifier(ref, keys, tag, where="the archive or the local store")(read, desc, sig_raw)
