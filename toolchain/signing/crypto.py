"""Raw signatures over payload bytes: ECDSA P-256/SHA-256 (DER), as cosign writes them.

Verification also accepts RSA PKCS#1 v1.5/SHA-256 and Ed25519 public keys, like ig's
verifier (sigstore ``LoadVerifier(pub, SHA256)``).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from gadgetsmith.toolchain.signing.keys import PublicKey


def sign_bytes(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_bytes(pub: PublicKey, signature: bytes, data: bytes) -> bool:
    key = pub.key
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def is_der_ecdsa_signature(signature: bytes) -> bool:
    """Whether ``signature`` is a well-formed DER ECDSA signature (SEQUENCE of two INTEGERs)."""
    try:
        decode_dss_signature(signature)
    except ValueError:
        return False
    return True


def all_ecdsa(keys: list[PublicKey]) -> bool:
    return bool(keys) and all(isinstance(k.key, ec.EllipticCurvePublicKey) for k in keys)
