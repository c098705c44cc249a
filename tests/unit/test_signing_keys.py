"""Signing keys, payloads and raw signatures: cosign formats, round trips, openssl interop."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from gadgetsmith.toolchain.signing import keys as K
from gadgetsmith.toolchain.signing import signature_tag
from gadgetsmith.toolchain.signing.crypto import sign_bytes, verify_bytes
from gadgetsmith.toolchain.signing.payload import PayloadError, build_payload, parse_payload

from ..conftest import need_tool

DIGEST = "sha256:" + "ab" * 32


def _pem_body(path: Path) -> tuple[str, dict]:
    kind, body = K.pem_decode(path.read_bytes(), str(path))
    return kind, json.loads(body)


def test_keygen_writes_cosign_format(tmp_path: Path) -> None:
    key_path, pub_path = K.write_key_pair(tmp_path / "cosign", b"s3cret")
    assert key_path.name == "cosign.key" and pub_path.name == "cosign.pub"
    assert key_path.stat().st_mode & 0o777 == 0o600
    kind, env = _pem_body(key_path)
    assert kind == "ENCRYPTED SIGSTORE PRIVATE KEY"
    assert env["kdf"]["name"] == "scrypt"
    assert env["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(env["kdf"]["salt"])) == 32
    assert env["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(env["cipher"]["nonce"])) == 24
    assert pub_path.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    priv = K.read_private_key(key_path, b"s3cret")
    pub = K.load_public_key(pub_path.read_bytes(), "cosign.pub")
    assert K.public_key_pem(priv) == pub.pem()
    assert priv.curve.name == "secp256r1"


def test_keygen_refuses_overwrite(tmp_path: Path) -> None:
    K.write_key_pair(tmp_path / "k", b"")
    with pytest.raises(K.UsageError, match="already exists"):
        K.write_key_pair(tmp_path / "k", b"")
    K.write_key_pair(tmp_path / "k", b"", force=True)


def test_wrong_passphrase(tmp_path: Path) -> None:
    key_path, _ = K.write_key_pair(tmp_path / "cosign", b"right")
    with pytest.raises(K.WrongPassphrase, match="wrong passphrase"):
        K.read_private_key(key_path, b"wrong")


def test_legacy_cosign_pem_type_and_other_scrypt_levels(tmp_path: Path) -> None:
    priv = K.generate_private_key()
    der = K.private_key_to_pkcs8(priv)
    for params in ((32768, 8, 1), (131072, 8, 1)):
        pem = K.pem_encode(K.PEM_COSIGN, K.encrypt_secret(der, b"pw", params))
        got = K.load_private_key(pem, "legacy.key", b"pw")
        assert K.public_key_pem(got) == K.public_key_pem(priv)


def test_scrypt_params_outside_cosigns_are_refused(tmp_path: Path) -> None:
    der = K.private_key_to_pkcs8(K.generate_private_key())
    env = json.loads(K.encrypt_secret(der, b"pw"))
    env["kdf"]["params"]["N"] = 1 << 24  # a DoS attempt: 16 GiB of scrypt memory
    pem = K.pem_encode(K.PEM_SIGSTORE, json.dumps(env).encode())
    with pytest.raises(K.KeyFileError, match="unsupported scrypt parameters"):
        K.load_private_key(pem, "evil.key", b"pw")


def test_tampered_ciphertext_is_refused() -> None:
    der = K.private_key_to_pkcs8(K.generate_private_key())
    env = json.loads(K.encrypt_secret(der, b"pw"))
    ct = bytearray(base64.b64decode(env["ciphertext"]))
    ct[40] ^= 1
    env["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    pem = K.pem_encode(K.PEM_SIGSTORE, json.dumps(env).encode())
    with pytest.raises(K.WrongPassphrase):
        K.load_private_key(pem, "x.key", b"pw")


def test_passphrase_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_path, _ = K.write_key_pair(tmp_path / "cosign", b"envpw")
    monkeypatch.delenv("GADGET_PASSWORD", raising=False)
    monkeypatch.setenv("COSIGN_PASSWORD", "envpw")
    assert K.read_private_key(key_path) is not None
    monkeypatch.setenv("GADGET_PASSWORD", "nope")  # GADGET_PASSWORD wins
    with pytest.raises(K.WrongPassphrase):
        K.read_private_key(key_path)


def test_plain_pkcs8_and_openssl_keys(tmp_path: Path) -> None:
    openssl = need_tool("openssl")
    key = tmp_path / "o.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(key)], check=True, capture_output=True)
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    priv = K.read_private_key(key)  # no passphrase needed
    enc = tmp_path / "e.pem"
    subprocess.run([openssl, "pkcs8", "-topk8", "-in", str(key), "-out", str(enc),
                    "-passout", "pass:pw"], check=True, capture_output=True)
    assert K.public_key_pem(K.read_private_key(enc, b"pw")) == K.public_key_pem(priv)
    with pytest.raises(K.WrongPassphrase):
        K.read_private_key(enc, b"bad")


def test_non_p256_keys_are_refused_for_signing(tmp_path: Path) -> None:
    openssl = need_tool("openssl")
    rsa = tmp_path / "rsa.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(rsa)], check=True, capture_output=True)
    with pytest.raises(K.KeyFileError, match="ECDSA P-256"):
        K.read_private_key(rsa)
    p384 = tmp_path / "p384.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384",
                    "-out", str(p384)], check=True, capture_output=True)
    with pytest.raises(K.KeyFileError, match="secp384r1"):
        K.read_private_key(p384)


def test_bad_key_files(tmp_path: Path) -> None:
    _, pub = K.write_key_pair(tmp_path / "c", b"")
    with pytest.raises(K.KeyFileError, match="is a public key"):
        K.read_private_key(pub)
    with pytest.raises(K.KeyFileError, match="not found"):
        K.read_private_key(tmp_path / "missing.key")
    trunc = tmp_path / "t.key"
    trunc.write_text((tmp_path / "c.key").read_text()[:120])
    with pytest.raises(K.KeyFileError, match="no END line"):
        K.read_private_key(trunc, b"")
    with pytest.raises(K.KeyFileError, match="private key"):
        K.read_public_keys([str(tmp_path / "c.key")])


def test_openssl_verifies_our_signature(tmp_path: Path) -> None:
    openssl = need_tool("openssl")
    key_path, pub_path = K.write_key_pair(tmp_path / "cosign", b"pw")
    priv = K.read_private_key(key_path, b"pw")
    payload = build_payload("registry.example.com/obs/trace_open", DIGEST)
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "sig").write_bytes(sign_bytes(priv, payload))
    ok = subprocess.run([openssl, "dgst", "-sha256", "-verify", str(pub_path), "-signature",
                         str(tmp_path / "sig"), str(tmp_path / "payload")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok
    (tmp_path / "payload").write_bytes(payload.replace(b"ab", b"cd", 1))
    bad = subprocess.run([openssl, "dgst", "-sha256", "-verify", str(pub_path), "-signature",
                          str(tmp_path / "sig"), str(tmp_path / "payload")], capture_output=True, text=True)
    assert bad.returncode == 1 and "Verification failure" in bad.stdout, bad


def test_we_verify_openssl_signature(tmp_path: Path) -> None:
    openssl = need_tool("openssl")
    key = tmp_path / "o.pem"
    pub = tmp_path / "o.pub"
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", str(key)], check=True, capture_output=True)
    subprocess.run([openssl, "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    payload = build_payload("localhost:5000/x", DIGEST)
    (tmp_path / "payload").write_bytes(payload)
    subprocess.run([openssl, "dgst", "-sha256", "-sign", str(key), "-out", str(tmp_path / "sig"),
                    str(tmp_path / "payload")], check=True, capture_output=True)
    pk = K.read_public_keys([str(pub)])[0]
    assert verify_bytes(pk, (tmp_path / "sig").read_bytes(), payload)
    assert not verify_bytes(pk, (tmp_path / "sig").read_bytes(), payload + b" ")


def test_payload_bytes_match_cosign_shape() -> None:
    p = build_payload("registry.example.com/obs/trace_open", DIGEST)
    assert p == (
        b'{"critical":{"identity":{"docker-reference":"registry.example.com/obs/trace_open"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    q = build_payload("r/x", DIGEST, {"z": "1", "a": "2"})
    assert q.endswith(b'"optional":{"a":"2","z":"1"}}')
    parsed = parse_payload(q)
    assert parsed.digest == DIGEST and parsed.identity == "r/x" and parsed.optional == {"a": "2", "z": "1"}


@pytest.mark.parametrize(
    "doc,reason",
    [
        (b"not json", "not valid JSON"),
        (b'{"critical":{}}', "docker-manifest-digest"),
        (b'{"critical":{"image":{"docker-manifest-digest":"sha256:aa"},"type":"other"}}', "type"),
        (b'{"critical":{"image":{"docker-manifest-digest":"sha256:aa","docker-manifest-digest":"sha256:bb"},'
         b'"type":"cosign container image signature"}}', "duplicate JSON key"),
    ],
)
def test_payload_parse_rejections(doc: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_payload(doc)


def test_signature_tag() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
