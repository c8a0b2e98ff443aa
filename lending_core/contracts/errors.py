"""Refusals of the contract area; ``api.errors`` maps each to an HTTP status and a stable code."""

from __future__ import annotations

from infra.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from infra.rate_limit import RateLimited


class ContractNotFound(NotFound):
    """No such contract, or not one the caller is a party to (or may see as staff of its bank)."""


class ApplicationNotApproved(Conflict):
    """A contract is made only from an approved application."""


class SignatoryMissing(InvalidInput):
    """The product needs every one of its signatories (e.g. a guarantor and a co-borrower) named."""


class SignatoryNotAllowed(InvalidInput):
    """Each party's role must be one the product asks for, and each role is named once."""


class InvalidParty(InvalidInput):
    """A party needs a real name (2-30 letters) and a mainland mobile number, different from
    every other party's."""


class PartyIsBorrower(InvalidInput):
    """The borrower cannot also be the guarantor or co-borrower of their own contract."""


class AlreadySigned(Conflict):
    """This party has already signed the contract."""


class ContractNotSignable(Conflict):
    """Only a contract awaiting signatures can be signed."""


class ContractExpired(Conflict):
    """The contract was not signed by every party in time; the application must be made again."""


class SigningCodeNotSent(Conflict):
    """Ask for a signing code first."""


class SigningCodeExpired(InvalidInput):
    """The signing code has lapsed: ask for a new one."""


class SigningCodeWrong(InvalidInput):
    """The signing code is wrong."""


class SigningCodeLocked(PermissionDenied):
    """Too many wrong signing codes: ask for a new code."""


class SigningCodeTooSoon(RateLimited):
    """A signing code was sent moments ago: wait before asking for another."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.args = ("a signing code was sent moments ago: wait before asking for another",)


class CertificateNotSigner(PermissionDenied):
    """The certificate names someone other than this party."""


class SigningMethodUnavailable(InvalidInput):
    """This signing method is not set up on the platform."""
