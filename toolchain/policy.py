"""Allowlist policy: which images may be pulled/run/pushed, plain-HTTP registries, keys.

A policy is a YAML file (schema: schemas/policy.schema.json)::

    apiVersion: gadgetsmith/v1
    allowedGadgets:                      # pull, import and run
      - ghcr.io/inspektor-gadget/gadget/*
      - reference: registry.corp:5000/obs/trace_open@sha256:...
        publicKeys: [keys/obs.pub]       # used by signature verification
      - reference: mirror.corp/obs/*     # copies of signed images (crane/oras/gadget copy)
        publicKeys: [keys/obs.pub]
        identities: [registry.corp:5000/obs/trace_open]   # names their signatures may carry
        # ignoreIdentity: true           # or any name, as cosign and ig accept
    allowedPush:                         # push, and the destination of copy
      - registry.corp:5000/obs/*
    insecureRegistries: [registry.lan:5000]
    disallowPulling: false
    allowLocalSources: false             # gadget run/test of a source directory or a .o

Where it comes from: ``--policy FILE``, else ``$GADGETSMITH_POLICY``, else
:data:`SYSTEM_POLICY` if that file exists, else no policy (everything allowed). A file
that says nothing (empty, or only comments) is an error, not "no restriction".

Local sources (a gadget directory, built on the spot, or a compiled ``.o``) carry no
name or signature the allowlist could check. A policy that restricts what runs
(``allowedGadgets`` present) refuses them unless it says ``allowLocalSources: true``;
``allowLocalSources: false`` refuses them under any policy.

Entry forms (matching is on the *normalised* reference, like ig's ``--allowed-gadgets``
but safer):

* ``host/repo:tag`` exact reference; short names are normalised (``trace_exec:v1``).
* ``host/repo`` the repository, any tag or digest.
* ``host/repo@sha256:<hex>`` only that digest. A tag cannot be checked against it before
  the network is used, so pull by digest; ``run`` of a local image knows its digest.
* ``host/team/*`` a prefix of the full reference string. The prefix must name the
  registry followed by ``/`` so ``reg.io*`` can never admit ``reg.io.evil.com``;
  the registry host is compared case-insensitively (DNS is).

References that are not plain ASCII or that do not parse (``..``, ``user@host``,
look-alike letters, URL schemes) are refused, whatever the policy says.
Decisions are pure functions of the policy and the reference string: no network I/O.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from gadgetsmith.runtime.oci.reference import InvalidReference, Reference, parse
from gadgetsmith.schemas import schema_file
from gadgetsmith.toolchain.errors import GadgetError, UsageError
from gadgetsmith.toolchain.names import check_names_repository

SYSTEM_POLICY = Path("/etc/gadgetsmith/policy.yaml")
ENV_POLICY = "GADGETSMITH_POLICY"

PULL = "pull"
RUN = "run"
PUSH = "push"
IMPORT = "import"
_ACTION_LIST = {PULL: "allowedGadgets", RUN: "allowedGadgets", PUSH: "allowedPush",
                IMPORT: "allowedGadgets"}
_ACTION_VERB = {PULL: "pulling", RUN: "running", PUSH: "pushing to", IMPORT: "importing"}
#: the kinds of local source :meth:`Policy.check_local_source` knows, as messages name them
LOCAL_KINDS = {"dir": "the gadget source directory", "object": "the eBPF object file"}

_PREFIX_TAIL_RE = re.compile(r"^[a-z0-9._/:@-]*$")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")


class PolicyError(UsageError):
    """The policy file itself is unusable (missing, bad YAML, bad entry)."""


class PolicyDenied(GadgetError):
    """The policy does not allow this operation on this reference."""

    exit_code = 3


@dataclass(frozen=True)
class Entry:
    """One allowlist entry, parsed."""

    text: str  # as written in the policy
    kind: str  # "exact" | "repository" | "digest" | "prefix"
    name: str = ""  # normalised host/repo (host lowercased); for exact/repository/digest
    tag: str | None = None
    digest: str | None = None
    prefix: str = ""  # for kind == "prefix"
    public_keys: tuple[str, ...] = ()
    #: other repositories a signature may name (mirrors); normalised host/repo
    identities: tuple[str, ...] = ()
    #: accept a signature whatever repository it names (cosign's and ig's behaviour)
    ignore_identity: bool = False

    def matches(self, ref: Reference, digest: str | None = None) -> bool:
        name = _name(ref)
        if self.kind == "prefix":
            return _full(ref).startswith(self.prefix)
        if name != self.name:
            return False
        if self.kind == "repository":
            return True
        if self.kind == "exact":
            return ref.tag == self.tag
        want = ref.digest or digest
        return want is not None and want == self.digest


def _name(ref: Reference) -> str:
    return f"{ref.domain.lower()}/{ref.path}"


def _full(ref: Reference) -> str:
    s = _name(ref)
    if ref.tag:
        s += f":{ref.tag}"
    if ref.digest:
        s += f"@{ref.digest}"
    return s


def _ascii_printable(text: str) -> bool:
    return text.isascii() and text.isprintable() and not any(c.isspace() for c in text)


def parse_destination(text: str, what: str = "destination") -> Reference:
    """:func:`parse_reference` for a name to write to (see :func:`check_names_repository`)."""
    check_names_repository(text, what)
    return parse_reference(text)


def parse_reference(text: str) -> Reference:
    """Parse a reference for a policy decision; refuse anything ambiguous."""
    if isinstance(text, str) and text != text.strip():
        raise UsageError(f"reference {text!r} has leading or trailing spaces: remove them "
                         "(a quoting mistake?)")
    if not isinstance(text, str) or not _ascii_printable(text):
        raise PolicyDenied(
            f"reference {text!r} contains non-ASCII, space or control characters: refused"
        )
    try:
        return parse(text)
    except InvalidReference as e:
        raise UsageError(f"{e} (reference {text!r})") from None


def parse_entry(text: str, keys: tuple[str, ...] = (), where: str = "policy") -> Entry:
    """Parse one allowlist entry; raises :class:`PolicyError` naming ``where``."""
    raw = text
    text = text.strip() if isinstance(text, str) else text
    if not isinstance(text, str) or not text:
        raise PolicyError(f"{where}: empty entry")
    if not _ascii_printable(text):
        raise PolicyError(f"{where}: entry {raw!r} has non-ASCII, space or control characters")
    if "*" in text:
        if text.count("*") != 1 or not text.endswith("*"):
            raise PolicyError(f"{where}: entry {text!r}: '*' is only allowed once, at the end")
        prefix = text[:-1]
        host, slash, rest = prefix.partition("/")
        if not slash:
            raise PolicyError(
                f"{where}: prefix entry {text!r} must name the registry and a '/' "
                f"(e.g. {host.rstrip('.')}/team/*) so that other registries cannot match it"
            )
        if not _HOST_RE.match(host) or not (
            "." in host or ":" in host or host.lower() == "localhost"
        ):
            raise PolicyError(
                f"{where}: prefix entry {text!r} must start with a registry host "
                f"(e.g. ghcr.io/{prefix}*)"
            )
        if not _PREFIX_TAIL_RE.match(rest):
            raise PolicyError(
                f"{where}: prefix entry {text!r} can never match: repository names are "
                "lowercase letters, digits and . _ - /"
            )
        return Entry(text, "prefix", prefix=f"{host.lower()}/{rest}", public_keys=keys)
    try:
        ref = parse(text, default_tag=False)
    except InvalidReference as e:
        raise PolicyError(f"{where}: entry {text!r}: {e}") from None
    if ref.digest:
        return Entry(text, "digest", name=_name(ref), digest=ref.digest, public_keys=keys)
    if ref.tag:
        return Entry(text, "exact", name=_name(ref), tag=ref.tag, public_keys=keys)
    return Entry(text, "repository", name=_name(ref), public_keys=keys)


@dataclass
class Policy:
    """A loaded policy. ``Policy()`` allows everything (no policy file)."""

    path: Path | None = None
    allowed_gadgets: list[Entry] | None = None
    allowed_push: list[Entry] | None = None
    insecure_registries: frozenset[str] = field(default_factory=frozenset)
    disallow_pulling: bool = False
    #: ``allowLocalSources`` as written (None: absent)
    allow_local_sources: bool | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "policy"

    # -- decisions --------------------------------------------------------------------
    def _entries(self, action: str) -> list[Entry] | None:
        return self.allowed_push if action == PUSH else self.allowed_gadgets

    def matching(self, action: str, ref: Reference | str, digest: str | None = None) -> list[Entry]:
        entries = self._entries(action) or []
        r = parse_reference(ref) if isinstance(ref, str) else ref
        return [e for e in entries if e.matches(r, digest)]

    def check(self, action: str, ref: Reference | str, digest: str | None = None) -> Entry | None:
        """Allow or raise :class:`PolicyDenied`. Returns the entry that allowed it.

        ``digest`` is the image digest when it is already known without the network
        (a local image for ``run``); for pulls it comes only from ``name@digest``.
        """
        if action not in _ACTION_LIST:
            raise ValueError(action)
        text = ref if isinstance(ref, str) else str(ref)
        r = parse_reference(text) if isinstance(ref, str) else ref
        if action == PULL and self.disallow_pulling:
            raise PolicyDenied(
                f"{self.source}: pulling is disallowed (disallowPulling: true); "
                f"{_full(r)} can only be used if it is already in the local store"
            )
        entries = self._entries(action)
        if entries is None:
            return None
        for e in entries:
            if e.matches(r, digest):
                return e
        key = _ACTION_LIST[action]
        hint = ""
        pinned = [e for e in entries if e.kind == "digest" and e.name == _name(r)]
        if pinned and not (r.digest or digest):
            hint = (
                f"; entry {pinned[0].text!r} allows only that digest: use "
                f"{pinned[0].name}@{pinned[0].digest}"
            )
        suggestion = f"{_name(r)}:{r.tag}" if r.tag else f"{_name(r)}@{r.digest}"
        if digest and not r.digest:
            suggestion += f"' or '{_name(r)}@{digest}"
        raise PolicyDenied(
            f"{self.source}: {_ACTION_VERB[action]} {_full(r)} is not allowed: no entry of "
            f"{key} matches{hint}; an entry that would allow it: '{suggestion}' "
            f"(or a prefix such as '{_name(r).rsplit('/', 1)[0]}/*')"
        )

    def check_local_source(self, kind: str, path: Path | str) -> None:
        """Allow running a local source (``kind``: a key of :data:`LOCAL_KINDS`) or raise
        :class:`PolicyDenied` naming the rule that refused it."""
        what = f"{LOCAL_KINDS[kind]} {path}"
        if self.allow_local_sources is True:
            return
        if self.allow_local_sources is False:
            raise PolicyDenied(
                f"{self.source}: running {what} is not allowed (allowLocalSources: false): "
                "run an image that allowedGadgets admits, or set allowLocalSources: true"
            )
        if self.allowed_gadgets is not None:
            raise PolicyDenied(
                f"{self.source}: running {what} is not allowed: the policy restricts what runs "
                "(allowedGadgets) and a local source has no name or signature it could check; "
                "build and tag an allowed image, or add 'allowLocalSources: true' to the policy"
            )

    def required_keys(self, ref: Reference | str, digest: str | None = None) -> list[str]:
        """PEM public keys that must have signed ``ref`` (union over matching entries)."""
        out: list[str] = []
        for e in self.matching(RUN, ref, digest):
            for k in e.public_keys:
                if k not in out:
                    out.append(k)
        return out

    def signature_identities(self, ref: Reference | str, digest: str | None = None) -> set[str] | None:
        """The repository names a signature of ``ref`` may name: its own, plus the
        ``identities`` of the matching entries; None (any name) when one of them says
        ``ignoreIdentity: true``."""
        r = parse_reference(ref) if isinstance(ref, str) else ref
        names = {r.name}
        for e in self.matching(RUN, r, digest):
            if e.ignore_identity:
                return None
            names.update(e.identities)
        return names

    def is_insecure(self, host: str) -> bool:
        return host.lower() in self.insecure_registries

    def with_insecure(self, hosts: list[str] | tuple[str, ...] | None) -> Policy:
        """A copy with extra ``--insecure-registries`` hosts."""
        extra = parse_insecure(hosts or [], "--insecure-registries")
        return replace(self, insecure_registries=self.insecure_registries | extra)

    def as_dict(self) -> dict[str, Any]:
        def ents(es: list[Entry] | None) -> Any:
            if es is None:
                return None
            return [{"reference": e.text, "kind": e.kind, "publicKeys": len(e.public_keys)} for e in es]

        return {
            "path": str(self.path) if self.path else None,
            "allowedGadgets": ents(self.allowed_gadgets),
            "allowedPush": ents(self.allowed_push),
            "insecureRegistries": sorted(self.insecure_registries),
            "disallowPulling": self.disallow_pulling,
            "allowLocalSources": self.allow_local_sources,
        }


def parse_insecure(hosts: list[str] | tuple[str, ...], where: str) -> frozenset[str]:
    out = set()
    for item in hosts:
        for h in str(item).split(","):
            h = h.strip()
            if not h:
                continue
            if "://" in h or "/" in h:
                raise PolicyError(f"{where}: {h!r}: give host[:port] only (no scheme or path)")
            if not _HOST_RE.match(h):
                raise PolicyError(f"{where}: {h!r} is not a host[:port]")
            out.add(h.lower())
    return frozenset(out)


def _load_keys(items: list[str], base: Path, where: str) -> tuple[str, ...]:
    keys = []
    for i, item in enumerate(items):
        if "-----BEGIN" in item:
            keys.append(item.strip() + "\n")
            continue
        p = Path(item).expanduser()
        if not p.is_absolute():
            p = base / p
        try:
            keys.append(p.read_text())
        except OSError as e:
            raise PolicyError(
                f"{where}.publicKeys[{i}]: cannot read key file {p}: {e.strerror}"
            ) from None
    return tuple(keys)


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        schema_file("policy").read_text())
    return schema


def _entries(doc: dict[str, Any], key: str, base: Path, src: str) -> list[Entry] | None:
    items = doc.get(key)
    if key not in doc or items is None:
        return None
    out = []
    for i, item in enumerate(items):
        where = f"{src}: {key}[{i}]"
        if isinstance(item, str):
            out.append(parse_entry(item, where=where))
        else:
            keys = _load_keys(item.get("publicKeys") or [], base, where)
            entry = parse_entry(item["reference"], keys, where=where)
            idents = tuple(_identity(x, f"{where}.identities[{j}]")
                           for j, x in enumerate(item.get("identities") or []))
            if (idents or "ignoreIdentity" in item) and not keys:
                raise PolicyError(
                    f"{where}: 'identities' and 'ignoreIdentity' only apply to signatures: "
                    "add publicKeys to this entry, or drop them"
                )
            out.append(replace(entry, identities=idents,
                               ignore_identity=bool(item.get("ignoreIdentity", False))))
    return out


def _identity(text: str, where: str) -> str:
    """A repository name a signature may name (host/repo, no tag or digest), normalised."""
    try:
        ref = parse(text.strip(), default_tag=False)
    except InvalidReference as e:
        raise PolicyError(f"{where}: {text!r}: {e}") from None
    if ref.tag or ref.digest:
        raise PolicyError(f"{where}: {text!r} names a tag or digest: give the repository only "
                          f"({ref.name})")
    return ref.name


def policy_from_dict(doc: Any, path: Path | None = None) -> Policy:
    import jsonschema

    src = str(path) if path else "policy"
    if doc is None or doc == {}:
        # an empty file must not read as "allow everything" (fails open)
        raise PolicyError(
            f"{src}: the policy is empty: write at least 'apiVersion: gadgetsmith/v1' and the "
            "rules (allowedGadgets, allowedPush, ...), or remove the file for no policy"
        )
    try:
        jsonschema.validate(doc, _schema())
    except jsonschema.ValidationError as e:
        loc = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise PolicyError(f"{src}: {loc}: {e.message}") from None
    base = path.parent if path else Path.cwd()
    return Policy(
        path=path,
        allowed_gadgets=_entries(doc, "allowedGadgets", base, src),
        allowed_push=_entries(doc, "allowedPush", base, src),
        insecure_registries=parse_insecure(doc.get("insecureRegistries") or [],
                                           f"{src}: insecureRegistries"),
        disallow_pulling=bool(doc.get("disallowPulling", False)),
        allow_local_sources=doc.get("allowLocalSources"),
    )


def policy_path(explicit: Path | str | None = None) -> Path | None:
    """Which policy file applies: --policy, $GADGETSMITH_POLICY, the system file, or none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_POLICY)
    if env:
        return Path(env)
    return SYSTEM_POLICY if SYSTEM_POLICY.is_file() else None


def load_policy(explicit: Path | str | None = None) -> Policy:
    """Load the applicable policy (see :func:`policy_path`); no file means allow all."""
    path = policy_path(explicit)
    if path is None:
        return Policy()
    # ruamel (through yamldoc) only when there is a file: ~20 ms of every push/pull otherwise
    from gadgetsmith.toolchain.metadata.yamldoc import YamlSyntaxError, load_marked

    origin = "--policy" if explicit else (ENV_POLICY if os.environ.get(ENV_POLICY) else "system policy")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} ({origin}) does not exist") from None
    except OSError as e:
        raise PolicyError(f"policy file {path} ({origin}): {e.strerror}") from None
    try:
        doc = load_marked(text).data
    except YamlSyntaxError as e:
        problem = e.message.removeprefix("malformed YAML: ")
        raise PolicyError(f"{path}:{e.line}: not valid YAML ({problem})") from None
    return policy_from_dict(doc, path)


class LocalNames(Protocol):
    """What run-by-digest needs of the local store: the names of a digest."""

    def names_of(self, digest: str) -> list[str]: ...


def check_local_run(store: LocalNames, ref: Reference | None, desc: dict[str, Any],
                    policy: Policy) -> Entry | None:
    """The allowlist check of `gadget run` for a local image (no network involved).

    ``ref, desc`` are what ``store.lookup`` found for the image; the digest is known, so
    ``name@digest`` entries apply. Run by bare digest (``ref`` None) is allowed when one of
    the local names of that digest is allowed.
    """
    if policy.allowed_gadgets is None:
        return None
    if ref is not None:
        return policy.check(RUN, ref, digest=desc["digest"])
    first: PolicyDenied | None = None
    for name in store.names_of(desc["digest"]):
        try:
            return policy.check(RUN, name, digest=desc["digest"])
        except PolicyDenied as e:
            first = first or e
    if first is not None:
        raise first
    raise PolicyDenied(
        f"{policy.source}: running {desc['digest']} is not allowed: the image has no name that "
        f"allowedGadgets admits; add '<name>@{desc['digest']}' to allowedGadgets"
    )


def required_keys(ref: str, policy: Policy | None = None) -> list[str]:
    """PEM public keys the applicable policy requires for ``ref`` (for signing/verify)."""
    return (policy or load_policy()).required_keys(ref)


__all__ = [
    "Entry", "IMPORT", "LOCAL_KINDS", "Policy", "PolicyDenied", "PolicyError", "PULL", "PUSH", "RUN",
    "SYSTEM_POLICY",
    "check_local_run", "check_names_repository", "load_policy", "parse_destination",
    "parse_entry", "parse_reference", "policy_from_dict", "policy_path",
    "required_keys",
]
