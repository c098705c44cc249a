"""The cryptographic side of verify-by-default: what runs once a policy names keys.

:mod:`~gadgetsmith.toolchain.signing.enforce` decides from the policy alone whether an
image must be signed; only then does it import this module, and with it cryptography,
the key loaders and the verifiers. Importing this module is the one place that cost is paid.
"""

from __future__ import annotations

from gadgetsmith.toolchain.signing.keys import PublicKey, load_public_key
from gadgetsmith.toolchain.signing.local import VerifyResult, verify_in_store
from gadgetsmith.toolchain.signing.source import StoreSource
from gadgetsmith.toolchain.signing.verify import pull_verifier

__all__ = ["PublicKey", "StoreSource", "VerifyResult", "load_public_key", "pull_verifier",
           "verify_in_store"]
