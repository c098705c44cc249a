"""Signing keys in cosign's file formats.

Private key (``cosign.key``): a PEM block of type ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older
cosign: ``ENCRYPTED COSIGN PRIVATE KEY``) whose body is a JSON object

    {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": <b64>},
     "cipher": {"name": "nacl/secretbox", "nonce": <b64>},
     "ciphertext": <b64>}

The 32-byte secretbox key is scrypt(passphrase, salt); the plaintext is the PKCS#8 DER of
the private key. Only the three scrypt parameter sets cosign itself uses are accepted on
read, so a crafted file cannot make us burn unbounded memory or time.

Also read: unencrypted PKCS#8 (``PRIVATE KEY``), SEC1 (``EC PRIVATE KEY``) and
password-protected PKCS#8 (``ENCRYPTED PRIVATE KEY``) as written by openssl.

Public key (``cosign.pub``): PKIX ``PUBLIC KEY`` PEM. Verification accepts ECDSA, RSA and
Ed25519 keys (as ig does); signing uses ECDSA P-256 with SHA-256.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import atomic_write

PEM_SIGSTORE = "ENCRYPTED SIGSTORE PRIVATE KEY"
PEM_COSIGN = "ENCRYPTED COSIGN PRIVATE KEY"
_ENCRYPTED_TYPES = (PEM_SIGSTORE, PEM_COSIGN)

#: (N, r, p) sets cosign writes (legacy, standard, OWASP); the first in the file we write
SCRYPT_DEFAULT = (65536, 8, 1)
SCRYPT_ALLOWED = {(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)}
SALT_SIZE = 32
NONCE_SIZE = 24

ENV_PASSWORD = ("GADGET_PASSWORD", "COSIGN_PASSWORD")

#: the public keys verification accepts (as ig's verifier does)
VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class KeyFileError(UsageError):
    """A key file that cannot be read or used (names the file and what to do)."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not decrypt the private key."""


# ------------------------------------------------------------------------------ PEM
def pem_encode(kind: str, body: bytes) -> bytes:
    b64 = base64.b64encode(body).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def pem_decode(data: bytes, source: str) -> tuple[str, bytes]:
    """The first PEM block in ``data``: (type, body). Headers (``K: v`` lines) are skipped."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{source}: not a PEM file (binary content)") from None
    start = text.find("-----BEGIN ")
    if start < 0:
        raise KeyFileError(f"{source}: no PEM block found (expected '-----BEGIN ...-----')")
    head_end = text.find("-----", start + 11)
    if head_end < 0:
        raise KeyFileError(f"{source}: malformed PEM header")
    kind = text[start + 11 : head_end]
    end_marker = f"-----END {kind}-----"
    end = text.find(end_marker, head_end)
    if end < 0:
        raise KeyFileError(f"{source}: PEM block {kind!r} has no END line (truncated file?)")
    body_lines = [ln.strip() for ln in text[head_end + 5 : end].splitlines()]
    body_lines = [ln for ln in body_lines if ln and ":" not in ln]
    try:
        body = base64.b64decode("".join(body_lines), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source}: PEM block {kind!r} is not valid base64 (corrupt file?)") from None
    return kind, body


# ------------------------------------------------------------------------------ passphrases
def passphrase_from_env() -> bytes | None:
    for name in ENV_PASSWORD:
        if name in os.environ:
            return os.environ[name].encode()
    return None


def get_passphrase(purpose: str, *, confirm: bool = False) -> bytes:
    """Passphrase from GADGET_PASSWORD, COSIGN_PASSWORD, or a terminal prompt."""
    env = passphrase_from_env()
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise UsageError(
            f"no passphrase for {purpose}: set GADGET_PASSWORD (or COSIGN_PASSWORD), "
            "or run on a terminal to be prompted"
        )
    first = getpass.getpass(f"Enter passphrase for {purpose}: ", stream=sys.stderr)
    if confirm:
        again = getpass.getpass("Enter passphrase again: ", stream=sys.stderr)
        if again != first:
            raise UsageError("passphrases do not match: nothing was written")
    return first.encode()


# ------------------------------------------------------------------------------ scrypt + secretbox
def _scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passphrase, salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * r * n + (1 << 20), dklen=32
    )


def _nacl() -> tuple[Any, type[Exception]]:
    """(SecretBox, CryptoError) of PyNaCl (libsodium): loaded only to read or write an
    encrypted private key, not for verification."""
    from nacl import exceptions, secret

    return secret.SecretBox, exceptions.CryptoError


def encrypt_secret(
    plaintext: bytes, passphrase: bytes, params: tuple[int, int, int] = SCRYPT_DEFAULT
) -> bytes:
    """The JSON envelope cosign stores inside its encrypted PEM block."""
    SecretBox, _ = _nacl()
    n, r, p = params
    salt = secrets.token_bytes(SALT_SIZE)
    nonce = secrets.token_bytes(NONCE_SIZE)
    box = SecretBox(_scrypt(passphrase, salt, n, r, p))
    sealed = box.encrypt(plaintext, nonce).ciphertext  # tag + encrypted bytes, as Go's Seal

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    doc = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decrypt_secret(envelope: bytes, passphrase: bytes, source: str) -> bytes:
    SecretBox, CryptoError = _nacl()
    try:
        doc = json.loads(envelope)
        kdf, cipher = doc["kdf"], doc["cipher"]
        name, params = kdf["name"], kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
        cipher_name = cipher["name"]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise KeyFileError(
            f"{source}: encrypted key body is not cosign's JSON envelope ({type(e).__name__}: {e})"
        ) from None
    if name != "scrypt":
        raise KeyFileError(f"{source}: unsupported key derivation {name!r} (cosign uses scrypt)")
    if cipher_name != "nacl/secretbox":
        raise KeyFileError(f"{source}: unsupported cipher {cipher_name!r} (cosign uses nacl/secretbox)")
    if (n, r, p) not in SCRYPT_ALLOWED:
        raise KeyFileError(
            f"{source}: unsupported scrypt parameters N={n} r={r} p={p} "
            "(cosign writes N=32768, 65536 or 131072 with r=8 p=1)"
        )
    if len(nonce) != NONCE_SIZE:
        raise KeyFileError(f"{source}: secretbox nonce is {len(nonce)} bytes, expected {NONCE_SIZE}")
    box = SecretBox(_scrypt(passphrase, salt, n, r, p))
    try:
        return bytes(box.decrypt(sealed, nonce))
    except CryptoError:
        raise WrongPassphrase(
            f"{source}: wrong passphrase (decryption failed): check GADGET_PASSWORD / COSIGN_PASSWORD"
        ) from None


# ------------------------------------------------------------------------------ key objects
@dataclass
class PublicKey:
    """A verification key and where it came from (shown in messages)."""

    key: VerifyingKey
    source: str

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def fingerprint(self) -> str:
        """sha256 of the DER SubjectPublicKeyInfo (short form in messages)."""
        der = self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "sha256:" + hashlib.sha256(der).hexdigest()


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_key_to_pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def encrypted_private_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes,
                              kind: str = PEM_SIGSTORE) -> bytes:
    return pem_encode(kind, encrypt_secret(private_key_to_pkcs8(key), passphrase))


def public_key_pem(key: ec.EllipticCurvePrivateKey | VerifyingKey) -> bytes:
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_signing_key(key: object, source: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "")
        raise KeyFileError(
            f"{source}: holds a {kind or 'non-ECDSA'} key; gadget signs with ECDSA P-256 keys "
            "(make one with 'gadget keygen')"
        )
    if key.curve.name != "secp256r1":
        raise KeyFileError(
            f"{source}: ECDSA key on curve {key.curve.name}; use a P-256 (secp256r1) key "
            "(make one with 'gadget keygen')"
        )
    return key


def load_private_key(
    data: bytes,
    source: str,
    passphrase: Callable[[], bytes] | bytes | None = None,
) -> ec.EllipticCurvePrivateKey:
    """Parse a private key file. ``passphrase`` is bytes or a callable asked only if needed."""
    def ask() -> bytes:
        if callable(passphrase):
            return passphrase()
        if passphrase is None:
            return get_passphrase(source)
        return passphrase

    kind, body = pem_decode(data, source)
    if kind in _ENCRYPTED_TYPES:
        der = decrypt_secret(body, ask(), source)
        try:
            key = serialization.load_der_private_key(der, None)
        except (ValueError, TypeError) as e:
            raise KeyFileError(f"{source}: decrypted key is not PKCS#8 ({e})") from None
        return _check_signing_key(key, source)
    if kind in ("PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        pw = ask() if kind == "ENCRYPTED PRIVATE KEY" else None
        try:
            key = serialization.load_pem_private_key(data, pw)
        except (ValueError, TypeError) as e:
            msg = str(e)
            if pw is not None and ("password" in msg.lower() or "decrypt" in msg.lower()):
                raise WrongPassphrase(f"{source}: wrong passphrase for the encrypted PKCS#8 key") from None
            raise KeyFileError(f"{source}: cannot parse {kind} ({msg})") from None
        return _check_signing_key(key, source)
    if kind == "PUBLIC KEY":
        raise KeyFileError(f"{source}: is a public key; --key needs the private key (e.g. cosign.key)")
    raise KeyFileError(
        f"{source}: unsupported PEM block {kind!r} (expected {PEM_SIGSTORE!r}, {PEM_COSIGN!r} "
        "or a PKCS#8 'PRIVATE KEY')"
    )


def read_private_key(path: Path | str, passphrase: Callable[[], bytes] | bytes | None = None
                     ) -> ec.EllipticCurvePrivateKey:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found: create one with 'gadget keygen'") from None
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    return load_private_key(data, str(path), passphrase)


def load_public_key(data: bytes, source: str) -> PublicKey:
    kind, _ = pem_decode(data, source)
    if kind != "PUBLIC KEY":
        hint = " (that is a private key: give the .pub file)" if "PRIVATE" in kind else ""
        raise KeyFileError(f"{source}: expected a 'PUBLIC KEY' PEM block, found {kind!r}{hint}")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{source}: cannot parse public key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{source}: unsupported public key type {type(key).__name__}")
    return PublicKey(key, source)


def read_public_keys(paths: list[str]) -> list[PublicKey]:
    out = []
    for p in paths:
        p = p.strip()
        if not p:
            continue
        try:
            data = Path(p).read_bytes()
        except FileNotFoundError:
            raise KeyFileError(f"public key file {p} not found") from None
        except OSError as e:
            raise KeyFileError(f"cannot read public key file {p}: {e.strerror}") from None
        out.append(load_public_key(data, p))
    if not out:
        raise UsageError("no public keys given: pass --public-keys cosign.pub[,other.pub]")
    return out


# ------------------------------------------------------------------------------ keygen
def write_key_pair(prefix: str | Path, passphrase: bytes, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``<prefix>.key`` (encrypted, mode 0600) and ``<prefix>.pub``. Atomic per file."""
    prefix = Path(prefix)
    key_path = prefix.with_name(prefix.name + ".key")
    pub_path = prefix.with_name(prefix.name + ".pub")
    if not force:
        for p in (key_path, pub_path):
            if p.exists():
                raise UsageError(f"{p} already exists: choose another --output-prefix or use --force")
    if not key_path.parent.is_dir():
        raise UsageError(f"directory {key_path.parent} does not exist")
    key = generate_private_key()
    atomic_write(key_path, encrypted_private_key_pem(key, passphrase), mode=0o600)
    atomic_write(pub_path, public_key_pem(key), mode=0o644)
    return key_path, pub_path
