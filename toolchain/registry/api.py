"""Registry operations: push, pull, copy, login/logout, capability check.

Every operation first parses and normalises the reference and asks the policy
(:mod:`gadgetsmith.toolchain.policy`); only then is a client created and the network
used. The building blocks for other features (signing) are:

* :func:`connect` -> :class:`~.client.RegistryClient` for a host with the user's
  auth file, CA file and insecure-registry settings;
* :func:`push_image`, :func:`pull_image`, :func:`copy_image`;
* :func:`~.capabilities.supports_referrers` (OCI 1.1 referrers API present?) and
  :func:`check_registry`;
* :func:`~gadgetsmith.toolchain.oci.sigtags.signature_tag` (``sha256-<hex>.sig``).

Signing sits above this package: what a pull verifies and which signatures a push sends
are passed in by the caller (``gadget pull`` passes
:func:`gadgetsmith.toolchain.signing.enforce.pull_check`, ``gadget push``
:func:`gadgetsmith.toolchain.signing.source.signatures_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.oci.sigtags import is_signature_tag, signature_tag
from gadgetsmith.toolchain.oci.store import Store, open_store
from gadgetsmith.toolchain.policy import (
    PULL,
    PUSH,
    Policy,
    PolicyDenied,
    load_policy,
    parse_destination,
    parse_reference,
)
from gadgetsmith.toolchain.registry.auth import AuthStore, Credentials
from gadgetsmith.toolchain.registry.capabilities import preflight, supports_referrers
from gadgetsmith.toolchain.registry.client import RegistryClient, RegistryError, is_loopback
from gadgetsmith.toolchain.registry.transfer import (
    Progress,
    SignatureView,
    StagedCheck,
    Stats,
    copy,
    pull,
    push,
)

#: ``verifier(policy, ref)``: the check a pull runs on its staged download, or None
PullVerifier = Callable[[Policy, Reference], StagedCheck | None]
#: ``signatures(store, repository)``: what a push sends of each local signature manifest
SignatureSelector = Callable[[Store, str], SignatureView]


@dataclass
class RemoteOptions:
    """How to reach registries: auth file, CA file, plain-HTTP hosts, policy."""

    authfile: Path | str | None = None
    ca_file: Path | str | None = None
    insecure_registries: list[str] = field(default_factory=list)
    policy_file: Path | str | None = None
    retries: int = 4
    backoff: float = 0.25
    #: credentials given for this run only (host -> Credentials), used instead of the
    #: auth file's for that host (`gadget publish --username U --password-stdin`)
    credentials: dict[str, Credentials] = field(default_factory=dict)
    _policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = load_policy(self.policy_file).with_insecure(self.insecure_registries)
        return self._policy

    def client(self, host: str) -> RegistryClient:
        if self.ca_file and not Path(self.ca_file).is_file():
            raise UsageError(f"--ca-file {self.ca_file}: no such file")
        return RegistryClient(
            host,
            insecure=self.policy.is_insecure(host),
            ca_file=str(self.ca_file) if self.ca_file else None,
            auth=AuthStore(self.authfile),
            credentials=self.credentials.get(host),
            retries=self.retries,
            backoff=self.backoff,
        )


def connect(host: str, options: RemoteOptions | None = None) -> RegistryClient:
    """A client for ``host`` (``registry.example.com:5000``) with the user's settings."""
    return (options or RemoteOptions()).client(host)


def push_image(image: str, *, dest: str | None = None, store_path: Path | None = None,
               options: RemoteOptions | None = None, progress: Progress | None = None,
               with_signature: bool = True, signatures: SignatureSelector | None = None) -> Stats:
    """Push local ``image`` to its own reference (or ``dest``); policy checked first.

    ``signatures`` picks what of each local signature manifest the destination gets
    (:func:`~gadgetsmith.toolchain.signing.source.signatures_for`: the layers naming it);
    without it the local signature manifests are pushed as they are."""
    options = options or RemoteOptions()
    target = parse_destination(dest) if dest else parse_reference(image)
    options.policy.check(PUSH, target)
    store = open_store(store_path)
    store.lookup(image)  # unknown local image: error before the network
    client = options.client(target.domain)
    mount_from = sorted({
        _ref.path for _ref in _same_host_refs(store, target) if _ref.path != target.path
    })
    view = signatures(store, target.name) if signatures else None
    return push(store, image, target, client, progress=progress, mount_from=mount_from,
                with_signature=with_signature, signature_view=view)


def _same_host_refs(store: Store, target: Reference) -> list[Reference]:
    out = []
    for e in store.entries():
        try:
            r = parse(e.reference)
        except InvalidReference:
            continue
        if r.domain.lower() == target.domain.lower():
            out.append(r)
    return out


def pull_image(image: str, *, store_path: Path | None = None, options: RemoteOptions | None = None,
               progress: Progress | None = None, with_signature: bool = True,
               verifier: PullVerifier | None = None) -> Stats:
    """Pull ``image`` (all architectures, and its signature tags) into the local store.

    ``verifier(policy, ref)`` gives the check for the staged download when the policy asks
    for a signature (:func:`gadgetsmith.toolchain.signing.enforce.pull_check`, which
    refuses the image before anything is stored); without a verifier, a pull the policy
    names public keys for is refused.
    """
    options = options or RemoteOptions()
    ref = parse_reference(image)
    options.policy.check(PULL, ref)
    if verifier is not None:
        check = verifier(options.policy, ref)
    elif options.policy.required_keys(ref, ref.digest):
        raise PolicyDenied(
            f"{options.policy.source} requires {ref} to be signed: pull it with a signature check "
            "(pull_image(..., verifier=signing.enforce.pull_check))"
        )
    else:
        check = None
    store = open_store(store_path)
    return pull(store, ref, options.client(ref.domain), progress=progress,
                with_signature=with_signature or check is not None, check=check)


def copy_image(source: str, dest: str, *, options: RemoteOptions | None = None,
               progress: Progress | None = None, with_signature: bool = True) -> Stats:
    """Copy between registries: ``source`` must be allowed for pull, ``dest`` for push."""
    options = options or RemoteOptions()
    src, dst = parse_reference(source), parse_destination(dest)
    options.policy.check(PULL, src)
    options.policy.check(PUSH, dst)
    src_client = options.client(src.domain)
    dst_client = src_client if dst.domain == src.domain else options.client(dst.domain)
    return copy(src, dst, src_client, dst_client, progress=progress, with_signature=with_signature)


def check_registry(host: str, repo: str = "gadgetsmith/preflight", *,
                   options: RemoteOptions | None = None, write: bool = True) -> dict[str, Any]:
    """Capability preflight; see :mod:`.capabilities`."""
    return preflight(connect(host, options), repo, write=write)


__all__ = [
    "AuthStore", "Progress", "RegistryClient", "RegistryError", "RemoteOptions", "Stats",
    "check_registry", "connect", "copy_image", "is_loopback", "is_signature_tag", "pull_image",
    "push_image", "signature_tag", "supports_referrers",
]
