"""Errors that the CLI turns into one clear line and a non-zero exit code."""

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


class MissingBlob(LookupError):
    """A signature source has no blob of that digest (verification reports it)."""
