"""Login: check credentials against the registry, then save them like `docker login`."""

from __future__ import annotations

from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.registry.api import RemoteOptions
from gadgetsmith.toolchain.registry.auth import AuthStore, Credentials
from gadgetsmith.toolchain.registry.client import RegistryClient


def registry_host(text: str) -> str:
    """``host[:port]`` of what the user typed (``https://`` and a trailing ``/`` dropped)."""
    host = text.strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme):]
    host = host.rstrip("/")
    if not host or "/" in host:
        raise UsageError(f"registry {text!r}: give host[:port] only (e.g. registry.corp:5000)")
    return host


def login(registry: str, username: str, password: str, *, options: RemoteOptions | None = None,
          verify: bool = True) -> str:
    """Verify ``username``/``password`` with the registry (unless ``verify`` is off) and save
    them in the auth file (or its credential helper). Returns where they were saved."""
    host = registry_host(registry)
    if not username or not password:
        raise UsageError("login needs a user name and a non-empty password")
    options = options or RemoteOptions()
    store = AuthStore(options.authfile)
    if verify:
        insecure = options.policy.is_insecure(host)
        client = RegistryClient(host, insecure=insecure,
                                ca_file=str(options.ca_file) if options.ca_file else None,
                                credentials=Credentials(username, password), retries=1)
        if not client.may_send_credentials:
            raise UsageError(
                f"{host} is reached over plain HTTP (--insecure-registries) and is not a loopback "
                "address: credentials are never sent in clear text; use HTTPS"
            )
        client.send("GET", "/v2/", scope=None, what=f"login to {host}").close()
    return store.login(host, username, password)
