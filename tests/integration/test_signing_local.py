"""gadget keygen / sign / verify against the local store, and the tamper corpus."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from gadgetsmith.runtime.oci.layout import sha256_digest
from gadgetsmith.toolchain.signing import SIGNATURE_ANNOTATION, signature_tag

from ..conftest import GADGET, run_gadget
from ..signing_util import (
    ENV,
    blob_path,
    flip_byte,
    key_pair,
    make_image,
    put_sig_manifest,
    read_json,
    sig_manifest,
)
from .test_bad_input import check_error

REF = "registry.example.com/obs/tiny:v1"


@pytest.fixture
def signed(tmp_path: Path, store: Path) -> dict:
    """An image signed (recursively) with cosign.key; other.pub is an unrelated key."""
    key, pub = key_pair(tmp_path)
    _, other_pub = key_pair(tmp_path, "other")
    digest = make_image(store, REF)
    run_gadget("sign", REF, "--key", str(key), "--recursive", store=store, env=ENV)
    return {"key": key, "pub": pub, "other": other_pub, "digest": digest, "store": store}


def verify(s: dict, *extra: str, ref: str = REF, pub: Path | None = None, check: bool = False):
    return run_gadget("verify", ref, "--public-keys", str(pub or s["pub"]), *extra,
                      store=s["store"], check=check)


# ---------------------------------------------------------------------------- happy paths
def test_keygen_cli(tmp_path: Path) -> None:
    res = run_gadget("keygen", "--output-prefix", str(tmp_path / "ci"), env=ENV)
    assert "Private key written to" in res.stdout
    assert (tmp_path / "ci.key").read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    assert (tmp_path / "ci.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = run_gadget("keygen", "--output-prefix", str(tmp_path / "ci"), env=ENV, check=False)
    check_error(again, "already exists", "--force")


def test_keygen_without_passphrase_source_fails_clearly(tmp_path: Path) -> None:
    env = {"GADGET_PASSWORD": "", "COSIGN_PASSWORD": ""}
    import os

    clean = {k: v for k, v in os.environ.items() if k not in env}
    proc = subprocess.run([GADGET, "keygen", "--output-prefix", str(tmp_path / "k")],
                          capture_output=True, text=True, env=clean, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "GADGET_PASSWORD" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "k.key").exists()


def test_sign_verify_round_trip(signed: dict) -> None:
    res = verify(signed, "--recursive", "--format", "json", check=True).json()
    assert res["digest"] == signed["digest"]
    digests = [v["digest"] for v in res["verified"]]
    index = read_json(signed["store"], signed["digest"])
    assert digests == [signed["digest"], *[m["digest"] for m in index["manifests"]]]
    assert all(v["key"] == str(signed["pub"]) and v["igCompatible"] for v in res["verified"])
    text = verify(signed, check=True)
    assert f"Verified {REF}@{signed['digest']}" in text.stdout
    # REF already pinned to the digest: named once, as given
    pinned = f"{REF.rsplit(':', 1)[0]}@{signed['digest']}"
    text = verify(signed, ref=pinned, check=True)
    assert text.stdout.splitlines()[0] == f"Verified {pinned}", text


def test_signature_manifest_is_cosign_shaped(signed: dict) -> None:
    store, digest = signed["store"], signed["digest"]
    manifest, _ = sig_manifest(store, digest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    payload = json.loads(blob_path(store, layer["digest"]).read_bytes())
    assert payload == {
        "critical": {
            "identity": {"docker-reference": "registry.example.com/obs/tiny"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    assert base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION], validate=True)
    listed = run_gadget("list", "--format", "json", store=store).json()
    assert [r["reference"] for r in listed] == [REF]  # the .sig tag is not an image


def test_openssl_verifies_stored_signature(signed: dict, tmp_path: Path) -> None:
    manifest, _ = sig_manifest(signed["store"], signed["digest"])
    layer = manifest["layers"][0]
    (tmp_path / "sig").write_bytes(base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]))
    res = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(signed["pub"]), "-signature",
                          str(tmp_path / "sig"), str(blob_path(signed["store"], layer["digest"]))],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "Verified OK" in res.stdout, res


def test_signatures_accumulate_dedup_and_replace(signed: dict, tmp_path: Path) -> None:
    store = signed["store"]
    again = run_gadget("sign", REF, "--key", str(signed["key"]), store=store, env=ENV)
    assert "Already signed" in again.stdout
    assert len(sig_manifest(store, signed["digest"])[0]["layers"]) == 1
    other_key = tmp_path / "other.key"
    two = run_gadget("sign", REF, "--key", str(other_key), store=store, env=ENV)
    assert "ig only accepts a signature manifest with exactly one" in two.stderr
    assert len(sig_manifest(store, signed["digest"])[0]["layers"]) == 2
    for pub in (signed["pub"], signed["other"]):
        res = verify(signed, "--format", "json", pub=pub, check=True)
        assert "exactly one layer" in res.stderr
    both = run_gadget("verify", REF, "--public-keys", f"{signed['other']},{signed['pub']}",
                      "--format", "json", store=store).json()
    assert both["verified"][0]["layer"] == 1  # the first layer that verifies wins
    rep = run_gadget("sign", REF, "--key", str(other_key), "--replace", "-a", "ci.run=42",
                     store=store, env=ENV)
    assert "replaced 2" in rep.stdout
    manifest, _ = sig_manifest(store, signed["digest"])
    assert len(manifest["layers"]) == 1
    check_error(verify(signed), "signature rejected", "does not verify")
    res = verify(signed, "--format", "json", pub=signed["other"], check=True).json()
    assert res["verified"][0]["annotations"] == {"ci.run": "42"}


def test_concurrent_signers_both_kept(tmp_path: Path, store: Path) -> None:
    make_image(store, REF)
    keys = [key_pair(tmp_path, f"k{i}") for i in range(3)]
    import os

    env = dict(os.environ, GADGETSMITH_STORE=str(store), **ENV)
    procs = [subprocess.Popen([GADGET, "sign", REF, "--key", str(k)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k, _ in keys]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    res = run_gadget("verify", REF, "--public-keys", ",".join(str(p) for _, p in keys),
                     "--format", "json", store=store).json()
    assert res["verified"][0]["layers"] == 3


def test_sign_errors(tmp_path: Path, store: Path) -> None:
    key, _ = key_pair(tmp_path)
    make_image(store, REF)
    # not in the store: signed in its registry, which is not there
    check_error(run_gadget("sign", "127.0.0.1:9/obs/nope:v1", "--key", str(key), "--insecure-registries",
                           "127.0.0.1:9", store=store, env=ENV, check=False), "cannot reach registry")
    check_error(run_gadget("sign", REF, "--key", str(key), store=store,
                           env={"GADGET_PASSWORD": "wrong"}, check=False), "wrong passphrase", str(key))
    check_error(run_gadget("sign", REF, "--key", str(key), "-a", "novalue", store=store, env=ENV,
                           check=False), "key=value")
    check_error(run_gadget("verify", REF, store=store, check=False,
                           env={"GADGETSMITH_POLICY": ""}), "--public-keys")


def test_verify_keys_from_policy(signed: dict, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "allowedGadgets:\n"
        f"  - reference: registry.example.com/obs/*\n    publicKeys: [{signed['pub']}]\n"
    )
    res = run_gadget("verify", REF, "--policy", str(policy), store=signed["store"])
    assert "Verified" in res.stdout


# ---------------------------------------------------------------------------- tamper corpus
def _index(signed: dict) -> dict:
    return read_json(signed["store"], signed["digest"])


def _amd64_manifest(signed: dict) -> dict:
    return _index(signed)["manifests"][0]


def test_unsigned_image_rejected(tmp_path: Path, store: Path) -> None:
    _, pub = key_pair(tmp_path)
    make_image(store, REF)
    res = run_gadget("verify", REF, "--public-keys", str(pub), store=store, check=False)
    check_error(res, "no signature found", "sha256-")


def test_tampered_index(signed: dict) -> None:
    flip_byte(blob_path(signed["store"], signed["digest"]), 30)
    check_error(verify(signed), "index", "does not match its digest")


def test_tampered_manifest(signed: dict) -> None:
    flip_byte(blob_path(signed["store"], _amd64_manifest(signed)["digest"]), 40)
    check_error(verify(signed), "manifest (linux/amd64)", "does not match its digest")


def test_tampered_config(signed: dict) -> None:
    m = read_json(signed["store"], _amd64_manifest(signed)["digest"])
    flip_byte(blob_path(signed["store"], m["config"]["digest"]), 3)
    check_error(verify(signed), "config of", "does not match its digest")


def test_tampered_layer(signed: dict) -> None:
    m = read_json(signed["store"], _amd64_manifest(signed)["digest"])
    flip_byte(blob_path(signed["store"], m["layers"][0]["digest"]))
    check_error(verify(signed), "ebpf layer of", "does not match its digest")


def test_tampered_payload_in_place(signed: dict) -> None:
    manifest, _ = sig_manifest(signed["store"], signed["digest"])
    flip_byte(blob_path(signed["store"], manifest["layers"][0]["digest"]), 20)
    check_error(verify(signed), "payload blob does not match its digest")


def test_tampered_payload_rewrapped(signed: dict) -> None:
    """Payload swapped for one naming the same digest but another repository, with the layer
    descriptor updated so all digests are consistent: only the signature can catch it."""
    store = signed["store"]
    manifest, _ = sig_manifest(store, signed["digest"])
    layer = manifest["layers"][0]
    payload = blob_path(store, layer["digest"]).read_bytes().replace(b"obs/tiny", b"obs/tinz")
    layer["digest"], layer["size"] = sha256_digest(payload), len(payload)
    put_sig_manifest(store, signed["digest"], json.dumps(manifest).encode(), [payload])
    check_error(verify(signed), "signature does not verify over the payload")


def test_tampered_signature(signed: dict) -> None:
    store = signed["store"]
    manifest, _ = sig_manifest(store, signed["digest"])
    ann = manifest["layers"][0]["annotations"]
    sig = bytearray(base64.b64decode(ann[SIGNATURE_ANNOTATION]))
    sig[-3] ^= 0x01
    ann[SIGNATURE_ANNOTATION] = base64.b64encode(bytes(sig)).decode()
    put_sig_manifest(store, signed["digest"], json.dumps(manifest).encode())
    check_error(verify(signed), "signature does not verify")


def test_signature_for_another_digest(signed: dict, tmp_path: Path) -> None:
    store = signed["store"]
    other_ref = "registry.example.com/obs/tiny:v2"
    other = make_image(store, other_ref, seed="b")
    run_gadget("sign", other_ref, "--key", str(signed["key"]), store=store, env=ENV)
    _, raw = sig_manifest(store, other)
    put_sig_manifest(store, signed["digest"], raw)  # B's signature filed under A's tag
    check_error(verify(signed), f"signature is for digest {other}, not for {signed['digest']}")


def test_wrong_key(signed: dict) -> None:
    check_error(verify(signed, pub=signed["other"]), "does not verify", str(signed["other"]))


@pytest.mark.parametrize("cut,reason", [(3, "not valid base64"), (8, "not a well-formed ECDSA signature")])
def test_truncated_annotation(signed: dict, cut: int, reason: str) -> None:
    store = signed["store"]
    manifest, _ = sig_manifest(store, signed["digest"])
    ann = manifest["layers"][0]["annotations"]
    ann[SIGNATURE_ANNOTATION] = ann[SIGNATURE_ANNOTATION][:-cut]
    put_sig_manifest(store, signed["digest"], json.dumps(manifest).encode())
    check_error(verify(signed), reason)


def test_duplicated_annotation(signed: dict) -> None:
    """Two signature annotations on one layer: readers could disagree which one counts."""
    store = signed["store"]
    _, raw = sig_manifest(store, signed["digest"])
    key = f'"{SIGNATURE_ANNOTATION}":'
    pos = raw.index(key.encode())
    forged = raw[:pos] + f'{key}"MEUCIQDforged",'.encode() + raw[pos:]
    json.loads(forged)  # still JSON (last key wins in Python and Go)
    put_sig_manifest(store, signed["digest"], forged)
    check_error(verify(signed), "duplicate JSON key", SIGNATURE_ANNOTATION)


def test_tampered_signature_manifest_blob(signed: dict) -> None:
    from ..signing_util import index_entry

    desc = index_entry(signed["store"], signature_tag(signed["digest"]))
    flip_byte(blob_path(signed["store"], desc["digest"]), 10)
    check_error(verify(signed), "signature manifest", "does not match its digest")


def test_identity_mismatch_and_ignore_identity(signed: dict) -> None:
    store = signed["store"]
    run_gadget("tag", REF, "registry.example.com/elsewhere/tiny:v1", store=store)
    res = verify(signed, ref="registry.example.com/elsewhere/tiny:v1")
    check_error(res, "signed identity 'registry.example.com/obs/tiny'", "--ignore-identity")
    ok = verify(signed, "--ignore-identity", ref="registry.example.com/elsewhere/tiny:v1", check=True)
    assert "Verified" in ok.stdout


def test_recursive_requires_arch_signatures(tmp_path: Path, store: Path) -> None:
    key, pub = key_pair(tmp_path)
    make_image(store, REF)
    run_gadget("sign", REF, "--key", str(key), store=store, env=ENV)  # index only
    run_gadget("verify", REF, "--public-keys", str(pub), store=store)
    res = run_gadget("verify", REF, "--public-keys", str(pub), "--recursive", store=store, check=False)
    check_error(res, "no signature found")


# ---------------------------------------------------------------------------- gadget rm
def _index_refs(store: Path) -> set[str]:
    doc = json.loads((store / "index.json").read_text())
    return {(d.get("annotations") or {}).get("org.opencontainers.image.ref.name") for d in doc["manifests"]}


def test_rm_removes_signature_tags_only_with_the_last_tag(signed: dict) -> None:
    store, digest = signed["store"], signed["digest"]
    per_arch = [m["digest"] for m in read_json(store, digest)["manifests"]]
    sig_tags = {signature_tag(digest)} | {signature_tag(d) for d in per_arch}
    assert sig_tags <= _index_refs(store)  # --recursive signed index and both arches
    sig_blob = blob_path(store, sig_manifest(store, digest)[0]["layers"][0]["digest"])
    # an unrelated signed image keeps its signature
    other = make_image(store, "registry.example.com/obs/other:v1", seed="b")
    run_gadget("sign", "registry.example.com/obs/other:v1", "--key", str(signed["key"]),
               store=store, env=ENV)
    run_gadget("tag", REF, "registry.example.com/obs/tiny:v2", store=store)

    res = run_gadget("rm", REF, store=store)
    assert res.stdout.strip() == f"Untagged: {REF}"  # v2 still names the digest
    assert sig_tags <= _index_refs(store)

    res = run_gadget("rm", "registry.example.com/obs/tiny:v2", store=store)
    assert "Deleted: registry.example.com/obs/tiny:v2" in res.stdout
    for tag in sig_tags:
        assert f"Deleted: {tag}" in res.stdout
    refs = _index_refs(store)
    assert not sig_tags & refs
    assert signature_tag(other) in refs
    assert not sig_blob.exists()  # the signature manifests and layers were garbage-collected
    verify(signed, ref="registry.example.com/obs/other:v1", check=True)


def test_rm_keeps_signature_of_a_manifest_another_image_shares(signed: dict) -> None:
    """rm by digest of an image whose per-arch manifest another index also lists."""
    from gadgetsmith.toolchain.oci.store import open_store

    store, digest = signed["store"], signed["digest"]
    index = read_json(store, digest)
    amd64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
    # a second index that reuses the signed amd64 manifest
    raw = json.dumps({"schemaVersion": 2, "mediaType": index["mediaType"],
                      "manifests": [amd64]}).encode()
    st = open_store(store)
    with st.lock():
        st.put_blob(raw)
        st.set_tag("registry.example.com/obs/amd64only:v1",
                   {"mediaType": index["mediaType"], "digest": sha256_digest(raw), "size": len(raw)})
    res = run_gadget("rm", digest, store=store)
    assert f"Deleted: {signature_tag(digest)}" in res.stdout
    refs = _index_refs(store)
    assert signature_tag(digest) not in refs
    assert signature_tag(amd64["digest"]) in refs  # still used by amd64only:v1
    arm64 = next(m for m in index["manifests"] if m["digest"] != amd64["digest"])
    assert signature_tag(arm64["digest"]) not in refs
