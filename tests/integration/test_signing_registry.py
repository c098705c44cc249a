"""Signing with a real docker-registry: push/pull carry signatures, pull verifies by policy,
remote sign/verify, signatures fetched into the store for offline checks.

(Debian's skopeo is built with sigstore disabled, so it cannot serve as an independent
verifier here; the signatures themselves are checked with openssl in test_signing_*.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from gadgetsmith.runtime.oci import mediatypes as mt

from ..conftest import run_gadget
from ..registry_util import registry, registry_server  # noqa: F401 - fixtures
from ..signing_util import (
    ENV,
    blob_path,
    key_pair,
    make_image,
    open_store,
    put_sig_manifest,
    read_json,
    sig_manifest,
    signature_tag,
)
from .test_bad_input import check_error


def _ref(reg, name: str = "obs/tiny:v1") -> str:
    return f"{reg.host}/{name}"


def _policy(tmp_path: Path, reg, pub: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(f"allowedGadgets:\n  - reference: {reg.host}/obs/*\n    publicKeys: [{pub}]\n"
                 f"insecureRegistries: [{reg.host}]\n")
    return p


def test_sign_push_pull_verify_round_trip(tmp_path: Path, registry) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = _ref(registry)
    digest = make_image(src, ref)
    run_gadget("push", ref, "--sign", "--key", str(key), "--recursive", *registry.client_args(),
               store=src, env=ENV)
    remote = run_gadget("verify", ref, "--public-keys", str(pub), "--remote", "--recursive",
                        "--format", "json", *registry.client_args(), store=dst).json()
    assert remote["source"] == "registry" and remote["digest"] == digest
    assert len(remote["verified"]) == 3
    pulled = run_gadget("pull", ref, "--policy", str(_policy(tmp_path, registry, pub)), store=dst)
    assert "Pulled" in pulled.stdout
    assert sig_manifest(dst, digest)[0]["layers"]  # the .sig tag came along into the store
    registry.stop()
    res = run_gadget("verify", ref, "--public-keys", str(pub), "--offline", "--format", "json",
                     store=dst).json()
    assert res["source"] == "local" and res["verified"][0]["digest"] == digest


def test_pull_refuses_unsigned_image_before_storing(tmp_path: Path, registry) -> None:  # noqa: F811
    _, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = _ref(registry)
    make_image(src, ref)
    run_gadget("push", ref, *registry.client_args(), store=src)
    policy = _policy(tmp_path, registry, pub)
    res = run_gadget("pull", ref, "--policy", str(policy), store=dst, check=False)
    check_error(res, "no signature found", ref)
    assert run_gadget("list", "--format", "json", store=dst).json() == []
    blobs = dst / "blobs" / "sha256"
    assert not blobs.exists() or not any(blobs.iterdir())  # nothing was written
    ok = run_gadget("pull", ref, "--policy", str(policy), "--no-verify", store=dst)
    assert "WARNING: signature verification DISABLED (--no-verify)" in ok.stderr
    assert [r["reference"] for r in run_gadget("list", "--format", "json", store=dst).json()] == [ref]


def test_pull_refuses_wrong_signer(tmp_path: Path, registry) -> None:  # noqa: F811
    key, _ = key_pair(tmp_path)
    _, trusted = key_pair(tmp_path, "trusted")
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = _ref(registry)
    make_image(src, ref)
    run_gadget("push", ref, "--sign", "--key", str(key), *registry.client_args(), store=src, env=ENV)
    res = run_gadget("pull", ref, "--policy", str(_policy(tmp_path, registry, trusted)), store=dst,
                     check=False)
    check_error(res, "signature does not verify")
    assert run_gadget("list", "--format", "json", store=dst).json() == []


def test_remote_sign_accumulates_and_replaces(tmp_path: Path, registry) -> None:  # noqa: F811
    k1, p1 = key_pair(tmp_path, "one")
    k2, p2 = key_pair(tmp_path, "two")
    src, empty = tmp_path / "src", tmp_path / "empty"
    ref = _ref(registry)
    make_image(src, ref)
    run_gadget("push", ref, *registry.client_args(), store=src)
    args = registry.client_args()
    run_gadget("sign", ref, "--key", str(k1), *args, store=empty, env=ENV)  # not local: remote
    two = run_gadget("sign", ref, "--key", str(k2), *args, store=empty, env=ENV)
    assert "now holds 2 signatures" in two.stderr
    for pub in (p1, p2):
        res = run_gadget("verify", ref, "--public-keys", str(pub), "--format", "json", *args,
                         store=empty).json()
        assert res["verified"][0]["layers"] == 2 and not res["verified"][0]["igCompatible"]
    run_gadget("sign", ref, "--key", str(k2), "--replace", *args, store=empty, env=ENV)
    check_error(run_gadget("verify", ref, "--public-keys", str(p1), *args, store=empty, check=False),
                "does not verify")
    res = run_gadget("verify", ref, "--public-keys", str(p2), "--format", "json", *args, store=empty)
    assert res.json()["verified"][0]["layers"] == 1


def test_local_verify_fetches_missing_signature(tmp_path: Path, registry) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = _ref(registry)
    digest = make_image(src, ref)
    run_gadget("push", ref, *registry.client_args(), store=src)
    run_gadget("pull", ref, "--no-signature", *registry.client_args(), store=dst)
    run_gadget("sign", ref, "--key", str(key), "--remote", *registry.client_args(), store=dst, env=ENV)
    check_error(run_gadget("verify", ref, "--public-keys", str(pub), "--offline", store=dst,
                           check=False), "no signature found")
    run_gadget("verify", ref, "--public-keys", str(pub), *registry.client_args(), store=dst)
    registry.stop()
    run_gadget("verify", ref, "--public-keys", str(pub), "--offline", store=dst)  # now cached
    assert sig_manifest(dst, digest)[0]["layers"]


def test_referrers_attach_falls_back_to_tag(tmp_path: Path, registry) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    src = tmp_path / "src"
    ref = _ref(registry)
    make_image(src, ref)
    run_gadget("push", ref, *registry.client_args(), store=src)
    res = run_gadget("sign", ref, "--key", str(key), "--remote", "--referrers", "--format", "json",
                     *registry.client_args(), store=src, env=ENV)
    out = res.json()
    assert out["signatures"][0]["added"]
    if out["warnings"]:
        assert "referrers API" in out["warnings"][0]
    run_gadget("verify", ref, "--public-keys", str(pub), "--remote", *registry.client_args(), store=src)


def test_signatures_survive_export_import_offline(tmp_path: Path, registry) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    src, mid, dst = tmp_path / "src", tmp_path / "mid", tmp_path / "dst"
    ref = _ref(registry)
    digest = make_image(src, ref)
    run_gadget("push", ref, "--sign", "--key", str(key), "--recursive", *registry.client_args(),
               store=src, env=ENV)
    policy = _policy(tmp_path, registry, pub)
    run_gadget("pull", ref, "--policy", str(policy), store=mid)
    run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", *registry.client_args(),
               store=mid)  # fetches the per-arch signatures into the store
    tar = tmp_path / "gadgets.tar"
    run_gadget("export", ref, str(tar), store=mid)
    registry.stop()
    res = run_gadget("import", str(tar), "--policy", str(policy), store=dst)
    assert f"Imported {ref}" in res.stdout
    out = run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", "--offline",
                     "--format", "json", store=dst).json()
    assert out["digest"] == digest and len(out["verified"]) == 3


def test_import_refuses_unsigned_image_under_policy(tmp_path: Path, registry) -> None:  # noqa: F811
    _, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref = _ref(registry)
    make_image(src, ref)
    tar = tmp_path / "unsigned.tar"
    run_gadget("export", ref, str(tar), store=src)
    policy = _policy(tmp_path, registry, pub)
    check_error(run_gadget("import", str(tar), "--policy", str(policy), store=dst, check=False),
                "no signature found")
    assert run_gadget("list", "--format", "json", store=dst).json() == []
    ok = run_gadget("import", str(tar), "--policy", str(policy), "--no-verify", store=dst)
    assert "signature verification DISABLED" in ok.stderr


def test_pull_carries_per_arch_signatures(tmp_path: Path, registry) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    ref, index_only = _ref(registry), _ref(registry, "obs/tiny:index-only")
    digest = make_image(src, ref)
    other = make_image(src, index_only, seed="b")
    args = registry.client_args()
    run_gadget("push", ref, "--sign", "--key", str(key), "--recursive", *args, store=src, env=ENV)
    run_gadget("push", index_only, "--sign", "--key", str(key), *args, store=src, env=ENV)
    out = run_gadget("pull", ref, "--format", "json", *args, store=dst).json()
    assert out["signature"] == signature_tag(digest) and out["warnings"] == []
    assert len(out["signatures"]) == 3 and out["signatures"][0] == signature_tag(digest)
    res = run_gadget("pull", ref, *args, store=tmp_path / "text3")
    assert f"3 signatures: {signature_tag(digest)}, " in res.stdout, res.stdout
    # only the index is signed: the per-arch tags that do not exist are no error
    res = run_gadget("pull", index_only, *args, store=tmp_path / "text")
    assert f"signature {signature_tag(other)})" in res.stdout, res.stdout
    out = run_gadget("pull", index_only, "--format", "json", *args, store=dst).json()
    assert out["signatures"] == [signature_tag(other)] and out["warnings"] == []
    registry.stop()
    res = run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", "--offline",
                     "--format", "json", store=dst).json()
    assert res["digest"] == digest and len(res["verified"]) == 3
    check_error(run_gadget("verify", index_only, "--public-keys", str(pub), "--recursive",
                           "--offline", store=dst, check=False), "no signature found")


def test_copy_carries_per_arch_signatures(tmp_path: Path, registry, registry_server) -> None:  # noqa: F811
    key, pub = key_pair(tmp_path)
    mirror = registry_server()
    src = tmp_path / "src"
    ref = _ref(registry)
    digest = make_image(src, ref)
    run_gadget("push", ref, "--sign", "--key", str(key), "--recursive", *registry.client_args(),
               store=src, env=ENV)
    hosts = ["--insecure-registries", f"{registry.host},{mirror.host}"]
    # another registry (blobs streamed) and another repository of the same one (mounted)
    for dest in (f"{mirror.host}/mirror/tiny:v1", f"{registry.host}/mirror/tiny:v1"):
        out = run_gadget("copy", ref, dest, "--format", "json", *hosts).json()
        assert out["signature"] == signature_tag(digest) and out["warnings"] == []
        res = run_gadget("verify", dest, "--public-keys", str(pub), "--remote", "--recursive",
                         "--ignore-identity", "--format", "json", *hosts, store=tmp_path / "none").json()
        assert res["digest"] == digest and len(res["verified"]) == 3


def test_fetched_signature_is_stored_whole_or_not_at_all(tmp_path: Path, registry) -> None:  # noqa: F811
    from ..registry_util import FaultProxy

    key, pub = key_pair(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    corrupt: list[str] = []
    proxy = FaultProxy(registry.host, lambda method, path: "corrupt" if any(
        method == "GET" and path.endswith(f"/blobs/{d}") for d in corrupt) else None)
    try:
        ref, args = f"{proxy.host}/obs/tiny:v1", ["--insecure-registries", proxy.host]
        digest = make_image(src, ref)
        run_gadget("push", ref, "--sign", "--key", str(key), "--recursive", *args, store=src, env=ENV)
        run_gadget("pull", ref, "--no-signature", *args, store=dst)
        broken, fine = [m["digest"] for m in read_json(src, digest)["manifests"]]
        # push --sign leaves the local store alone: read what it pushed from a full pull
        run_gadget("pull", ref, *args, store=tmp_path / "peek")
        payload = sig_manifest(tmp_path / "peek", broken)[0]["layers"][0]["digest"]
        corrupt.append(payload)  # the registry now serves a damaged payload of one signature
        res = run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", *args,
                         store=dst, check=False)
        check_error(res, "no signature found", broken)
        tags = {e.reference for e in open_store(dst).entries()}
        assert signature_tag(digest) in tags and signature_tag(fine) in tags
        assert signature_tag(broken) not in tags
        assert not blob_path(dst, payload).exists()
        assert not list(dst.glob(".tmp-*"))
        corrupt.clear()
        run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", *args, store=dst)
    finally:
        proxy.close()
    registry.stop()
    out = run_gadget("verify", ref, "--public-keys", str(pub), "--recursive", "--offline",
                     "--format", "json", store=dst).json()
    assert len(out["verified"]) == 3


@pytest.mark.parametrize("where", ["local", "remote"])
def test_sign_merge_dedup_replace_same_locally_and_remotely(where: str, tmp_path: Path,
                                                            registry) -> None:  # noqa: F811
    from gadgetsmith.toolchain.registry.api import RemoteOptions, connect

    k1, p1 = key_pair(tmp_path, "one")
    k2, p2 = key_pair(tmp_path, "two")
    ref, args = _ref(registry), registry.client_args()
    src, store = tmp_path / "src", tmp_path / where
    digest = make_image(store if where == "local" else src, ref)
    if where == "remote":
        run_gadget("push", ref, *args, store=src)

    def sign(key: Path, *extra: str, check: bool = True):
        return run_gadget("sign", ref, "--key", str(key), *extra, *args, store=store, env=ENV,
                          check=check)

    line = f"{ref.split(':v1')[0]}@{digest} -> {signature_tag(digest)}"
    assert f"Signed {line} [1 signature(s)]" in sign(k1).stdout
    assert f"Already signed by this key: {line} [1 signature(s)]" in sign(k1).stdout
    # nothing added: the JSON still names the signature manifest that holds the signature
    again = sign(k1, "--format", "json").json()["signatures"][0]
    if where == "local":
        want = "sha256:" + hashlib.sha256(sig_manifest(store, digest)[1]).hexdigest()
    else:
        want = connect(registry.host, RemoteOptions(insecure_registries=[registry.host])) \
            .manifest_head("obs/tiny", signature_tag(digest)).digest
    assert not again["added"] and again["signatureManifest"] == want
    two = sign(k2)
    assert f"Signed {line} [2 signature(s)]" in two.stdout
    assert f"{signature_tag(digest)} now holds 2 signatures; ig only accepts" in two.stderr
    assert f"Already signed by this key: {line} [2 signature(s)]" in sign(k2).stdout
    assert f"Signed {line} [1 signature(s)] (replaced 2)" in sign(k1, "--replace").stdout
    # a damaged signature manifest (duplicated JSON key): refused, unless --replace
    def damaged(raw: bytes) -> bytes:
        return raw.replace(b'"schemaVersion"', b'"schemaVersion":2,"schemaVersion"', 1)

    if where == "local":
        put_sig_manifest(store, digest, damaged(sig_manifest(store, digest)[1]))
    else:
        client = connect(registry.host, RemoteOptions(insecure_registries=[registry.host]))
        raw = client.manifest_get("obs/tiny", signature_tag(digest))[0]
        client.manifest_put("obs/tiny", signature_tag(digest), damaged(raw), mt.MANIFEST)
    check_error(sign(k2, check=False), "duplicate JSON key", "--replace")
    assert f"Signed {line} [1 signature(s)] (replaced 1)" in sign(k2, "--replace").stdout
    run_gadget("verify", ref, "--public-keys", str(p2), *args, store=store)
    check_error(run_gadget("verify", ref, "--public-keys", str(p1), *args, store=store, check=False),
                "does not verify")
