"""Registry operations: push, pull, copy, login/logout, capability check.

Every operation first parses and normalises the reference and asks the policy
(:mod:`gadgetsmith.toolchain.policy`); only then is a client created and the network
used. The building blocks for other features (signing) are:

* :func:`connect` -> :class:`~.client.RegistryClient` for a host with the user's
  auth file, CA file and insecure-registry settings;
* :func:`push_image`, :func:`pull_image`, :func:`copy_image`;
* :func:`supports_referrers` (OCI 1.1 referrers API present?) and :func:`check_registry`;
* :func:`~gadgetsmith.toolchain.signing.signature_tag` (``sha256-<hex>.sig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.runtime.oci.reference import Reference
from gadgetsmith.toolchain.policy import PULL, PUSH, Policy, load_policy, parse_reference
from gadgetsmith.toolchain.registry.auth import AuthStore
from gadgetsmith.toolchain.registry.client import RegistryClient, RegistryError, is_loopback
from gadgetsmith.toolchain.registry.transfer import Progress, Stats
from gadgetsmith.toolchain.signing import is_signature_tag, signature_tag


@dataclass
class RemoteOptions:
    """How to reach registries: auth file, CA file, plain-HTTP hosts, policy."""

    authfile: Path | str | None = None
    ca_file: Path | str | None = None
    insecure_registries: list[str] = field(default_factory=list)
    policy_file: Path | str | None = None
    retries: int = 4
    backoff: float = 0.25
    _policy: Policy | None = None

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = load_policy(self.policy_file).with_insecure(self.insecure_registries)
        return self._policy

    def client(self, host: str) -> RegistryClient:
        if self.ca_file and not Path(self.ca_file).is_file():
            from gadgetsmith.toolchain.errors import UsageError

            raise UsageError(f"--ca-file {self.ca_file}: no such file")
        return RegistryClient(
            host,
            insecure=self.policy.is_insecure(host),
            ca_file=str(self.ca_file) if self.ca_file else None,
            auth=AuthStore(self.authfile),
            retries=self.retries,
            backoff=self.backoff,
        )


def connect(host: str, options: RemoteOptions | None = None) -> RegistryClient:
    """A client for ``host`` (``registry.example.com:5000``) with the user's settings."""
    return (options or RemoteOptions()).client(host)


def _store(store_path):
    from gadgetsmith.toolchain.oci.store import open_store

    return open_store(store_path)


def push_image(image: str, *, dest: str | None = None, store_path: Path | None = None,
               options: RemoteOptions | None = None, progress: Progress | None = None,
               with_signature: bool = True) -> Stats:
    """Push local ``image`` to its own reference (or ``dest``); policy checked first."""
    from gadgetsmith.toolchain.registry.transfer import push

    options = options or RemoteOptions()
    target = parse_reference(dest or image)
    options.policy.check(PUSH, target)
    store = _store(store_path)
    store.lookup(image)  # unknown local image: error before the network
    client = options.client(target.domain)
    mount_from = sorted({
        _ref.path for _ref in _same_host_refs(store, target) if _ref.path != target.path
    })
    from gadgetsmith.toolchain.signing.local import signatures_for

    return push(store, image, target, client, progress=progress, mount_from=mount_from,
                with_signature=with_signature, signature_view=signatures_for(store, target.name))


def _same_host_refs(store, target: Reference) -> list[Reference]:
    from gadgetsmith.runtime.oci.reference import InvalidReference, parse

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
               verify: bool = True, warn=None) -> Stats:
    """Pull ``image`` (all architectures, and its signature tags) into the local store.

    When the policy names public keys for ``image`` its signature is verified on the
    staged download and the image is refused before anything is stored; ``verify=False``
    (``--no-verify``) skips that with a loud warning through ``warn``.
    """
    from gadgetsmith.toolchain.registry.transfer import pull
    from gadgetsmith.toolchain.signing.enforce import pull_check

    options = options or RemoteOptions()
    ref = parse_reference(image)
    options.policy.check(PULL, ref)
    check = pull_check(options.policy, ref, no_verify=not verify, warn=warn)
    store = _store(store_path)
    return pull(store, ref, options.client(ref.domain), progress=progress,
                with_signature=with_signature or check is not None, check=check)


def copy_image(source: str, dest: str, *, options: RemoteOptions | None = None,
               progress: Progress | None = None, with_signature: bool = True) -> Stats:
    """Copy between registries: ``source`` must be allowed for pull, ``dest`` for push."""
    from gadgetsmith.toolchain.registry.transfer import copy

    options = options or RemoteOptions()
    src, dst = parse_reference(source), parse_reference(dest)
    options.policy.check(PULL, src)
    options.policy.check(PUSH, dst)
    src_client = options.client(src.domain)
    dst_client = src_client if dst.domain == src.domain else options.client(dst.domain)
    return copy(src, dst, src_client, dst_client, progress=progress, with_signature=with_signature)


def supports_referrers(client: RegistryClient, repo: str) -> bool:
    """Whether the registry serves the OCI 1.1 referrers API for ``repo``."""
    probe = "sha256:" + "0" * 64
    return client.referrers(repo, probe) is not None


def check_registry(host: str, repo: str = "gadgetsmith/preflight", *,
                   options: RemoteOptions | None = None, write: bool = True) -> dict[str, Any]:
    """Capability preflight; see :mod:`.capabilities`."""
    from gadgetsmith.toolchain.registry.capabilities import preflight

    return preflight(connect(host, options), repo, write=write)


__all__ = [
    "AuthStore", "Progress", "RegistryClient", "RegistryError", "RemoteOptions", "Stats",
    "check_registry", "connect", "copy_image", "is_loopback", "is_signature_tag", "pull_image",
    "push_image", "signature_tag", "supports_referrers",
]
