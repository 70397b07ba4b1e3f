"""The errors of the envelope formats (JWS, COSE) and their algorithm table."""

from __future__ import annotations

from ocisign.errors import SigningError, VerificationError

__all__ = ["EnvelopeError", "UnsupportedKeyError"]


class EnvelopeError(VerificationError):
    """A signature envelope is malformed or its signature does not verify.

    ``check`` names the verification step the failure belongs to (``integrity`` unless said
    otherwise), so the verification engine can report it under the right heading.
    """

    check: str = "integrity"

    def __init__(self, message: str, *, check: str | None = None) -> None:
        super().__init__(message)
        if check is not None:
            self.check = check


class UnsupportedKeyError(SigningError, VerificationError):
    """A key or certificate whose type/size is not one of the six Notary key specs.

    Both a SigningError (when signing) and a VerificationError (when verifying).
    """

    check: str = "integrity"
