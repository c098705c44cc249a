"""Docker-compatible registry credentials: the auth file, credential helpers, login/logout.

Which file (the first that applies):

1. ``--authfile FILE`` (an explicit file that does not exist is simply empty for reads,
   and is created by ``gadget login``);
2. ``$REGISTRY_AUTH_FILE`` (podman/skopeo);
3. ``$DOCKER_CONFIG/config.json``;
4. ``~/.docker/config.json``.

The format is Docker's: ``{"auths": {"host:port": {"auth": base64("user:pass")}},
"credHelpers": {"host": "NAME"}, "credsStore": "NAME"}``; helpers are the
``docker-credential-NAME`` programs (``get``/``store``/``erase`` over stdin/stdout).
``identitytoken`` entries are OAuth2 refresh tokens for the bearer flow.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.fsutil import atomic_write

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")


class AuthFileError(UsageError):
    """The registry auth file (or a credential helper it names) cannot be used."""


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # OAuth2 refresh token (bearer flow)

    @property
    def basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def auth_file_path(explicit: Path | str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return Path(env).expanduser()
    dc = os.environ.get("DOCKER_CONFIG")
    if dc:
        return Path(dc).expanduser() / "config.json"
    return Path.home() / ".docker" / "config.json"


def _host_keys(host: str) -> list[str]:
    """Keys under which a host may appear in ``auths`` (docker writes URLs sometimes)."""
    h = host.lower()
    keys = [host, h, f"https://{h}", f"http://{h}", f"https://{h}/v1/", f"https://{h}/v2/"]
    if h in DOCKER_HUB_KEYS:
        keys = list(DOCKER_HUB_KEYS) + keys
    return keys


class AuthStore:
    """A Docker config file with its credential helpers."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = auth_file_path(path)
        self._doc: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        if self._doc is None:
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                self._doc = {}
                return self._doc
            except OSError as e:
                raise AuthFileError(f"auth file {self.path}: {e.strerror}") from None
            try:
                doc = json.loads(text) if text.strip() else {}
            except ValueError as e:
                raise AuthFileError(
                    f"auth file {self.path} is not valid JSON ({e}): fix or remove it"
                ) from None
            if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
                raise AuthFileError(f"auth file {self.path}: expected {{\"auths\": {{...}}}}")
            self._doc = doc
        return self._doc

    def _helper_for(self, host: str) -> str | None:
        doc = self.load()
        helpers = doc.get("credHelpers") or {}
        for k in _host_keys(host):
            if k in helpers:
                return str(helpers[k])
        store = doc.get("credsStore")
        return store if isinstance(store, str) and store else None

    # -- read -------------------------------------------------------------------------
    def get(self, host: str) -> Credentials | None:
        doc = self.load()
        auths = doc.get("auths") or {}
        helpers = doc.get("credHelpers") or {}
        explicit_helper = next((helpers[k] for k in _host_keys(host) if k in helpers), None)
        if explicit_helper:
            return _helper_get(explicit_helper, host)
        for k in _host_keys(host):
            entry = auths.get(k)
            if not isinstance(entry, dict):
                continue
            if entry.get("identitytoken"):
                return Credentials(entry.get("username", "") or "<token>", "",
                                   entry["identitytoken"])
            if entry.get("auth"):
                try:
                    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise AuthFileError(
                        f"auth file {self.path}: auths[{k!r}].auth is not base64 of user:password"
                    ) from None
                return Credentials(user, pw)
            if entry.get("username"):
                return Credentials(entry["username"], entry.get("password", ""))
        if doc.get("credsStore"):
            return _helper_get(doc["credsStore"], host)
        return None

    # -- write ------------------------------------------------------------------------
    def _save(self) -> None:
        doc = self.load()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)

    def login(self, host: str, username: str, password: str) -> str:
        """Store credentials; returns where they went (the file or the helper)."""
        helper = self._helper_for(host)
        if helper:
            _helper_run(helper, "store",
                        json.dumps({"ServerURL": host, "Username": username, "Secret": password}))
            return f"docker-credential-{helper}"
        doc = self.load()
        auths = doc.setdefault("auths", {})
        auths[host] = {"auth": Credentials(username, password).basic}
        self._save()
        return str(self.path)

    def logout(self, host: str) -> bool:
        """Remove credentials for ``host``; returns whether there were any."""
        found = False
        helper = self._helper_for(host)
        if helper:
            try:
                _helper_run(helper, "erase", host)
                found = True
            except GadgetError:
                pass
        doc = self.load()
        auths = doc.get("auths") or {}
        for k in _host_keys(host):
            if k in auths:
                del auths[k]
                found = True
        if found and self.path.exists():
            self._save()
        return found


def _helper_run(name: str, action: str, stdin: str) -> str:
    exe = f"docker-credential-{name}"
    try:
        proc = subprocess.run([exe, action], input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise GadgetError(
            f"credential helper {exe} (configured in the auth file) is not on PATH: "
            "install it or remove credsStore/credHelpers"
        ) from None
    if proc.returncode != 0:
        msg = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        raise GadgetError(f"credential helper {exe} {action} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def _helper_get(name: str, host: str) -> Credentials | None:
    try:
        out = _helper_run(name, "get", host)
    except GadgetError as e:
        if "credentials not found" in str(e).lower():
            return None
        raise
    try:
        data = json.loads(out)
    except ValueError:
        raise GadgetError(f"credential helper docker-credential-{name} returned invalid JSON") from None
    user, secret = data.get("Username", ""), data.get("Secret", "")
    if user == "<token>":
        return Credentials(user, "", secret)
    return Credentials(user, secret)


__all__ = ["AuthFileError", "AuthStore", "Credentials", "auth_file_path"]
