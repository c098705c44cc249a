"""Every error the toolchain raises, and the exit code each one means.

The CLI prints ``error: <message>`` (and ``detail`` above it when there is one, such as
clang's diagnostics) and exits with the class's ``exit_code``; no traceback unless
``--debug``. The tree (classes defined next to the code that raises them)::

    GadgetError                      exit 1  a failure: one line that names what and why
    ├── UsageError                   exit 2  bad arguments or bad input files
    │   ├── PolicyError                      the policy file is unusable (policy)
    │   ├── KeyFileError                     a key file cannot be read or used (signing.keys)
    │   │   └── WrongPassphrase
    │   ├── AuthFileError                    the registry auth file (registry.auth)
    │   ├── ArchiveError                     an import tar is not acceptable (oci.archive)
    │   ├── YamlSyntaxError                  a YAML file does not parse: line, column (metadata.yamldoc)
    │   └── SpecError                        gadget test specs, every problem at once (testing.spec)
    ├── NotFoundError                        a reference, file or object does not exist
    │   ├── MissingBlob                      a signature source lacks a blob (also a LookupError)
    │   └── BuilderImageNotFound             the builder image is not in the engine (builder.engine)
    ├── PolicyDenied                 exit 3  the policy refuses the operation (policy)
    ├── CompileError                         clang rejected the source (build.compile)
    ├── WasmBuildError                       a WASM module did not build (build.wasm)
    ├── BuilderImageError                    the builder image was not made: mmdebstrap (builder.image)
    ├── EngineError                          no container engine answers, or it refused (builder.engine)
    ├── StoreError                           the local store cannot be read or written (oci.store)
    ├── RegistryError                        a registry operation failed (registry.client)
    │   ├── RegistryAuthError
    │   └── DigestMismatch
    ├── TransportError                       no HTTP answer at all (registry.transport)
    │   ├── ConnectError                     refused, reset, timed out, cut short: retried
    │   └── TLSError                         certificate or protocol: not retried
    ├── VerificationError                    not signed by a trusted key, or tampered
    │   └── IntegrityError                   a blob does not match its digest, or is missing
    ├── CaseError                            a gadget test case cannot run as written (testing.runner)
    ├── TriggerError                         a test trigger step cannot run (testing.triggers)
    ├── Interrupted                  exit 130  a test run was cancelled (testing.runner)
    ├── CaseFailed                           a test case failed, ``result`` says why (testing.session)
    ├── PublishFailed                exit *  a gadget publish step failed: that step's code (publish)
    └── FormatError                          a document is malformed (also a ValueError)
        ├── PayloadError                     a simple-signing payload (signing.payload)
        ├── DuplicateKeyError                a JSON object repeats a key (signing.payload)
        ├── SignatureManifestError           a signature manifest (signing.sigmanifest)
        ├── CoreError                        CO-RE relocation data (btfgen.core)
        ├── TemplateError                    a gadget test template (testing.templates)
        ├── SchemaRefused                    the generated schema check refused it (metadata.fastschema)
        └── MatchError                       a gadget test matcher (testing.matchers)

The runtime has its own tree under ``gadgetsmith.runtime.errors.RuntimeGadgetError``; the
toolchain turns those into GadgetError where it calls the runtime.
"""

from __future__ import annotations


class GadgetError(Exception):
    """A user-facing failure. ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: extra multi-line output that belongs with the error (e.g. compiler diagnostics)
        self.detail = detail


class UsageError(GadgetError):
    """Bad arguments or bad input files (exit code 2)."""

    exit_code = 2


class NotFoundError(GadgetError):
    """A reference, file or object does not exist."""


class VerificationError(GadgetError):
    """The image is not signed by a trusted key, or its content does not match (exit 1)."""


class IntegrityError(VerificationError):
    """A blob of the image graph does not match its digest or is missing."""


class MissingBlob(NotFoundError, LookupError):
    """A signature source has no blob of that digest (verification reports it)."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} is missing")
        self.digest = digest


class FormatError(GadgetError, ValueError):
    """A document the toolchain reads is malformed (``message`` says how); callers that
    know the document's name usually turn it into a more precise error."""
