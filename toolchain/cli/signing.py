"""`gadget keygen`, `gadget sign`, `gadget verify`: cosign-compatible signatures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from gadgetsmith.toolchain.cli.common import (
    AuthFileOpt,
    CaFileOpt,
    InsecureOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    print_json,
    store_path,
)
from gadgetsmith.toolchain.cli.registry import remote_options
from gadgetsmith.toolchain.errors import NotFoundError, UsageError
from gadgetsmith.toolchain.policy import load_policy, parse_reference
from gadgetsmith.toolchain.signing.cli_helpers import lookup_local, verify_image
from gadgetsmith.toolchain.signing.enforce import policy_keys
from gadgetsmith.toolchain.signing.keys import (
    PublicKey,
    get_passphrase,
    read_private_key,
    read_public_keys,
    write_key_pair,
)
from gadgetsmith.toolchain.signing.local import SignResult, parse_annotations, sign_local
from gadgetsmith.toolchain.signing.remote import sign_remote

_StoreOpt = Annotated[Path | None, typer.Option("--store", help="Local OCI store.", show_default=False)]


def _warn(msg: str) -> None:
    typer.echo(f"warning: {msg}", err=True)


# ---------------------------------------------------------------------------- keygen
def keygen(
    output_prefix: Annotated[
        str, typer.Option("--output-prefix", help="Write PREFIX.key and PREFIX.pub.")
    ] = "cosign",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing key files.")] = False,
    fmt: OutputOpt = Output.columns,
) -> None:
    """Create an ECDSA P-256 key pair in cosign's format (encrypted .key, PKIX .pub).

    The passphrase comes from GADGET_PASSWORD or COSIGN_PASSWORD, else a prompt.

    Example: GADGET_PASSWORD=... gadget keygen --output-prefix ci-signing
    """
    passphrase = get_passphrase(f"the new key {output_prefix}.key", confirm=True)
    key_path, pub_path = write_key_pair(output_prefix, passphrase, force=force)
    if fmt.structured:
        print_json({"privateKey": str(key_path), "publicKey": str(pub_path)}, fmt)
        return
    typer.echo(f"Private key written to {key_path}")
    typer.echo(f"Public key written to {pub_path}")


# ---------------------------------------------------------------------------- sign
def sign(
    image: Annotated[str, typer.Argument(help="Image reference (local store).")],
    key: Annotated[Path, typer.Option("--key", help="Private key (cosign.key or PKCS#8 PEM).")],
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Also sign each per-architecture manifest.")
    ] = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Drop existing signatures (ig accepts exactly one)."),
    ] = False,
    annotation: Annotated[
        list[str] | None,
        typer.Option("-a", "--annotation", help="key=value put in the signed payload (repeatable)."),
    ] = None,
    remote: Annotated[bool, typer.Option(
        "--remote", help="Sign the image in its registry even if it is also local.")] = False,
    referrers: Annotated[bool, typer.Option(
        "--referrers", help="Registry: also attach via the OCI 1.1 referrers API.")] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: _StoreOpt = None,
) -> None:
    """Sign an image: a cosign signature tagged sha256-<digest>.sig next to it.

    A local image is signed in the local store ('gadget push' uploads the signature with
    it); an image that is not local (or --remote) is signed in its registry.

    Example: gadget sign registry.example.com/obs/trace_open:v1 --key cosign.key --recursive
    """
    annotations = parse_annotations(annotation)
    private_key = read_private_key(key)
    local = None if remote else lookup_local(store_path(store), image)
    if local is None and not remote and not _names_registry(image):
        # a short name is what the local store holds: a typo must not become a sign
        # request to ghcr.io
        raise NotFoundError(
            f"{image!r} is not in the local store (see 'gadget list'); to sign an image in its "
            "registry, give its full name (host/repository:tag) or add --remote")
    if local is None:
        opts = remote_options(authfile, insecure_registries, ca_file, policy)
        result = sign_remote(parse_reference(image), private_key, opts, recursive=recursive,
                             replace=replace, annotations=annotations, referrers=referrers)
    else:
        result = sign_local(
            store_path(store), image, private_key, recursive=recursive, replace=replace,
            annotations=annotations, resolved=local,
        )
    for w in result.warnings:
        _warn(w)
    if fmt.structured:
        print_json(result.as_dict(), fmt)
    else:
        _print_signed(result)


def _print_signed(result: SignResult) -> None:
    for s in result.signed:
        what = "Signed" if s.added else "Already signed by this key:"
        extra = f" (replaced {s.replaced})" if s.replaced else ""
        typer.echo(f"{what} {result.identity}@{s.digest} -> {s.tag} [{s.layers} signature(s)]{extra}")


def _names_registry(text: str) -> bool:
    """Whether ``text`` starts with a registry host (``reg.io/...``, ``localhost:5000/...``)."""
    first, slash, _ = text.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


# ---------------------------------------------------------------------------- verify
def _keys_for(image: str, public_keys: str | None, policy_file: Path | None) -> list[PublicKey]:
    if public_keys:
        return read_public_keys(public_keys.split(","))
    keys = policy_keys(load_policy(policy_file), image)
    if not keys:
        raise UsageError(
            f"no public keys for {image}: pass --public-keys cosign.pub[,other.pub] "
            "or name publicKeys for it in the policy"
        )
    return keys


def verify(
    image: Annotated[str, typer.Argument(help="Image reference.")],
    public_keys: Annotated[
        str | None,
        typer.Option("--public-keys", help="Comma-separated PEM public keys; any one may match."),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", help="Also require signatures on per-arch manifests.")
    ] = False,
    ignore_identity: Annotated[
        bool,
        typer.Option("--ignore-identity", help="Accept signatures made for another repository."),
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the local store, never the registry.")
    ] = False,
    remote: Annotated[
        bool, typer.Option("--remote", help="Verify the image in its registry, not the local copy.")
    ] = False,
    authfile: AuthFileOpt = None,
    insecure_registries: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    policy: PolicyOpt = None,
    fmt: OutputOpt = Output.columns,
    store: _StoreOpt = None,
) -> None:
    """Verify an image's cosign signature and that its content matches the signed digest.

    A local image is verified from the local store; a signature missing there is fetched
    from the registry first (unless --offline). Keys default to the policy's publicKeys.

    Example: gadget verify registry.example.com/obs/trace_open:v1 --public-keys cosign.pub
    """
    keys = _keys_for(image, public_keys, policy)
    result = verify_image(
        store_path(store), image, keys, recursive=recursive, ignore_identity=ignore_identity,
        offline=offline, remote=remote,
        options=remote_options(authfile, insecure_registries, ca_file, policy), warn=_warn,
    )
    for w in result.warnings:
        _warn(w)
    if fmt.structured:
        print_json(result.as_dict(), fmt)
        return
    pinned = result.reference.endswith(f"@{result.digest}")  # REF already named the digest
    typer.echo(f"Verified {result.reference if pinned else f'{result.reference}@{result.digest}'}")
    for v in result.verified:
        typer.echo(
            f"  {v.digest}: signed by {v.key.source} (signature {v.layer} of {v.layers}, "
            f"identity {v.identity or '-'})"
        )
