"""Key-based Sigstore bundles (cosign v3's default format): what check_bundle accepts and
each way it refuses. The bundles are built here the way cosign writes them (checked against
cosign v2.6.5 and v3.1.3 in tests/integration/test_interop_tools.py)."""

from __future__ import annotations

import base64
import json

import pytest
from gadgetsmith.toolchain.signing.bundle import check_bundle, pae
from gadgetsmith.toolchain.signing.crypto import sign_bytes
from gadgetsmith.toolchain.signing.keys import generate_private_key, load_public_key, public_key_pem

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def statement(digest: str = DIGEST) -> bytes:
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.split(":", 1)[1]}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {},
    }).encode()


def bundle(key, body: bytes, *, ptype: str = "application/vnd.in-toto+json", sig: bytes | None = None,
           material: dict | None = None) -> bytes:
    sig = sig if sig is not None else sign_bytes(key, pae(ptype, body))
    return json.dumps({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material or {"publicKey": {"hint": "x"}},
        "dsseEnvelope": {"payload": base64.b64encode(body).decode(), "payloadType": ptype,
                         "signatures": [{"sig": base64.b64encode(sig).decode()}]},
    }).encode()


@pytest.fixture(scope="module")
def keys():
    signer, stranger = generate_private_key(), generate_private_key()
    return signer, [load_public_key(public_key_pem(signer.public_key()), "signer.pub")], \
        [load_public_key(public_key_pem(stranger.public_key()), "stranger.pub")]


def test_pae_is_dsse_v1() -> None:
    assert pae("t/x", b"hi") == b"DSSEv1 3 t/x 2 hi"


def test_a_bundle_for_the_digest_verifies(keys) -> None:
    signer, pubs, _ = keys
    assert check_bundle(bundle(signer, statement()), DIGEST, pubs) is pubs[0]


@pytest.mark.parametrize("case, reason", [
    ("other digest", f"bundle is for digest {DIGEST}, not for {OTHER}"),
    ("other key", "bundle signature does not verify with the given key(s) (stranger.pub): signed by"),
    ("keyless", "signed keyless (a certificate), which gadget does not verify"),
    ("payload changed", "bundle signature does not verify"),
    ("signed raw payload", "bundle signature does not verify"),  # not over PAE
    ("payload type", "payloadType 'text/plain' is not 'application/vnd.in-toto+json'"),
    ("message signature", "bundle has a messageSignature; only cosign's DSSE (in-toto) bundles"),
    ("not a statement", "bundle payload _type 'x' is not an in-toto Statement"),
    ("bad base64", "dsseEnvelope.payload is not valid base64"),
    ("duplicate key", "duplicate JSON key 'mediaType'"),
])
def test_bundle_refusals(keys, case: str, reason: str) -> None:
    signer, pubs, stranger = keys
    use, digest = pubs, DIGEST
    if case == "other digest":
        data, digest = bundle(signer, statement()), OTHER
    elif case == "other key":
        data, use = bundle(signer, statement()), stranger
    elif case == "keyless":
        data, use = bundle(signer, statement(), material={"certificate": {"rawBytes": "AA=="}}), stranger
    elif case == "payload changed":
        good = json.loads(bundle(signer, statement()))
        good["dsseEnvelope"]["payload"] = base64.b64encode(statement(OTHER)).decode()
        data, digest = json.dumps(good).encode(), OTHER
    elif case == "signed raw payload":
        data = bundle(signer, statement(), sig=sign_bytes(signer, statement()))
    elif case == "payload type":
        data = bundle(signer, statement(), ptype="text/plain")
    elif case == "message signature":
        data = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                           "messageSignature": {}}).encode()
    elif case == "not a statement":
        data = bundle(signer, json.dumps({"_type": "x"}).encode())
    elif case == "bad base64":
        good = json.loads(bundle(signer, statement()))
        good["dsseEnvelope"]["payload"] = "!!"
        data = json.dumps(good).encode()
    else:
        data = b'{"mediaType": "a", "mediaType": "b"}'
    with pytest.raises(ValueError) as ei:
        check_bundle(data, digest, use)
    assert reason in str(ei.value), str(ei.value)
