"""The error table: every refusal becomes ``{"error": {"code", "message", "details"}}``.

Domain errors are looked up by class, walking the class's ancestry, so a new subclass without an
entry still gets its parent's status and code; codes are stable API. Sanic's own exceptions
(unknown route, wrong method, oversized body…) are rendered the same way. Expected refusals are
logged at info level, never as crashes; anything else is a 500 with only the request id.
"""

from __future__ import annotations

import logging

from asyncpg import exceptions as asyncpg_errors
from sanic import Request, response
from sanic import exceptions as sanic_exceptions
from sanic.handlers import ErrorHandler
from tortoise.exceptions import DBConnectionError

from channels import bank_apps, open_platform, sessions, signing
from channels.ports import WeChatRefused, WeChatUnavailable
from channels.wechat import WeChatAccountMissing
from infra import errors, idempotency, identity_numbers
from infra.logs import request_id_var
from infra.rate_limit import RateLimited
from lending_core.access import BankNotChosen
from lending_core.applications import errors as application_errors
from lending_core.contracts import errors as contract_errors
from lending_core.contracts import ports as contract_ports
from lending_core.customers import errors as customer_errors
from lending_core.ledger.service import LedgerKeyReused
from lending_core.loans import errors as loan_errors
from lending_core.loans.ports import CoreBankingUnavailable
from lending_core.products import errors as product_errors
from lending_core.customers.ports import VerificationUnavailable
from lending_core.approvals.service import SelfApproval, UnknownChangeKind
from lending_core.org.errors import AccountDisabled, AccountLocked, InvalidCredentials, InvalidRoles, UsernameTaken
from lending_core.risk_lists import errors as list_errors
from lending_core.risk import rulebook
from lending_core.risk import transactions as risk_transactions
from marketing import errors as marketing_errors

log = logging.getLogger("api.errors")


class MalformedJson(errors.InvalidInput):
    """The body is not valid JSON."""


class UnsupportedMediaType(errors.InvalidInput):
    """Send the body as application/json."""


class ValidationFailed(errors.InvalidInput):
    """One or more fields are missing or have the wrong type or value."""


class FieldNotAllowed(errors.InvalidInput):
    """The body sets fields the caller may not set."""


class IdempotencyKeyRequired(errors.InvalidInput):
    """This operation moves money or creates an application: send an Idempotency-Key header."""


DATABASE_LOST = (503, "DATABASE_UNAVAILABLE")

ERROR_TABLE: dict[type[Exception], tuple[int, str]] = {
    # Our domain errors, most specific first in spirit (lookup walks the MRO).
    errors.DomainError: (400, "BAD_REQUEST"),
    errors.InvalidInput: (400, "INVALID_INPUT"),
    MalformedJson: (400, "MALFORMED_JSON"),
    UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE"),
    ValidationFailed: (422, "VALIDATION_FAILED"),
    FieldNotAllowed: (422, "FIELD_NOT_ALLOWED"),
    IdempotencyKeyRequired: (400, "IDEMPOTENCY_KEY_REQUIRED"),
    idempotency.IdempotencyKeyInvalid: (400, "IDEMPOTENCY_KEY_INVALID"),
    idempotency.IdempotencyKeyReused: (422, "IDEMPOTENCY_KEY_REUSED"),
    idempotency.IdempotencyKeyInProgress: (409, "IDEMPOTENCY_KEY_IN_PROGRESS"),
    errors.Unauthenticated: (401, "UNAUTHENTICATED"),
    sessions.TokenInvalid: (401, "TOKEN_INVALID"),
    sessions.TokenExpired: (401, "TOKEN_EXPIRED"),
    sessions.RefreshRefused: (401, "REFRESH_REFUSED"),
    InvalidCredentials: (401, "INVALID_CREDENTIALS"),
    errors.PermissionDenied: (403, "FORBIDDEN"),
    AccountLocked: (423, "ACCOUNT_LOCKED"),
    AccountDisabled: (403, "ACCOUNT_DISABLED"),
    SelfApproval: (403, "SELF_APPROVAL"),
    errors.NotFound: (404, "NOT_FOUND"),
    errors.Conflict: (409, "CONFLICT"),
    errors.IllegalTransition: (409, "ILLEGAL_TRANSITION"),
    UsernameTaken: (409, "USERNAME_TAKEN"),
    InvalidRoles: (422, "INVALID_ROLES"),
    UnknownChangeKind: (422, "UNKNOWN_CHANGE_KIND"),
    errors.DependencyUnavailable: (503, "DEPENDENCY_UNAVAILABLE"),
    # The database went away under the request (a restart, a failover, a dropped connection):
    # nothing it did was committed, or it was and a retry with the same Idempotency-Key answers
    # with the first result, so the client is told to try again rather than that we failed.
    asyncpg_errors.PostgresConnectionError: DATABASE_LOST,
    asyncpg_errors.OperatorInterventionError: DATABASE_LOST,
    asyncpg_errors.InternalClientError: DATABASE_LOST,
    DBConnectionError: DATABASE_LOST,
    ConnectionError: DATABASE_LOST,
    # Customers and channels.
    BankNotChosen: (409, "BANK_NOT_CHOSEN"),
    customer_errors.CustomerAlreadyExists: (409, "CUSTOMER_ALREADY_EXISTS"),
    customer_errors.UnknownConsentPurpose: (422, "UNKNOWN_CONSENT_PURPOSE"),
    customer_errors.UnknownPiiField: (422, "UNKNOWN_PII_FIELD"),
    customer_errors.RealNameMismatch: (422, "REAL_NAME_MISMATCH"),
    customer_errors.RealNameAlreadyVerified: (409, "REAL_NAME_ALREADY_VERIFIED"),
    customer_errors.InvalidFirm: (422, "INVALID_FIRM"),
    VerificationUnavailable: (503, "VERIFICATION_UNAVAILABLE"),
    WeChatRefused: (400, "WECHAT_REFUSED"),
    WeChatUnavailable: (503, "WECHAT_UNAVAILABLE"),
    WeChatAccountMissing: (404, "WECHAT_ACCOUNT_MISSING"),
    signing.SignatureRequired: (401, "SIGNATURE_REQUIRED"),
    signing.SignatureInvalid: (401, "SIGNATURE_INVALID"),
    signing.SignatureExpired: (401, "SIGNATURE_EXPIRED"),
    signing.NonceReplayed: (401, "NONCE_REPLAYED"),
    bank_apps.ChannelKeyMismatch: (401, "CHANNEL_KEY_MISMATCH"),
    bank_apps.BankKeyMismatch: (403, "BANK_KEY_MISMATCH"),
    bank_apps.FirmRequired: (422, "FIRM_REQUIRED"),
    open_platform.ScopeMissing: (403, "SCOPE_MISSING"),
    open_platform.ConsentMissing: (422, "CONSENT_MISSING"),
    RateLimited: (429, "RATE_LIMITED"),
    # Products and applications.
    product_errors.ProductNotFound: (404, "PRODUCT_NOT_FOUND"),
    product_errors.ProductNotOffered: (422, "PRODUCT_NOT_OFFERED"),
    product_errors.RequestOutOfBounds: (422, "REQUEST_OUT_OF_BOUNDS"),
    product_errors.DefinitionRefused: (422, "DEFINITION_REFUSED"),
    product_errors.VersionConflict: (409, "VERSION_CONFLICT"),
    product_errors.ParameterOutOfBounds: (422, "PARAMETER_OUT_OF_BOUNDS"),
    product_errors.ApplicantsRefused: (400, "APPLICANTS_REFUSED"),
    product_errors.TooManyApplicants: (413, "TOO_MANY_APPLICANTS"),
    application_errors.RealNameRequired: (409, "REAL_NAME_REQUIRED"),
    application_errors.ConsentsMissing: (422, "CONSENTS_MISSING"),
    application_errors.CoolingOff: (409, "COOLING_OFF"),
    application_errors.TooManyLiveApplications: (409, "TOO_MANY_LIVE_APPLICATIONS"),
    application_errors.ReviewerIsReferrer: (403, "REVIEWER_IS_REFERRER"),
    application_errors.AboveModelLimit: (403, "ABOVE_MODEL_LIMIT"),
    # Contracts and signing.
    contract_errors.ContractNotFound: (404, "CONTRACT_NOT_FOUND"),
    contract_errors.ApplicationNotApproved: (409, "APPLICATION_NOT_APPROVED"),
    contract_errors.SignatoryMissing: (422, "SIGNATORY_MISSING"),
    contract_errors.SignatoryNotAllowed: (422, "SIGNATORY_NOT_ALLOWED"),
    contract_errors.InvalidParty: (422, "INVALID_PARTY"),
    contract_errors.PartyIsBorrower: (422, "PARTY_IS_BORROWER"),
    contract_errors.AlreadySigned: (409, "ALREADY_SIGNED"),
    contract_errors.ContractNotSignable: (409, "CONTRACT_NOT_SIGNABLE"),
    contract_errors.ContractExpired: (410, "CONTRACT_EXPIRED"),
    contract_errors.SigningCodeNotSent: (409, "SIGNING_CODE_NOT_SENT"),
    contract_errors.SigningCodeExpired: (422, "SIGNING_CODE_EXPIRED"),
    contract_errors.SigningCodeWrong: (422, "SIGNING_CODE_WRONG"),
    contract_errors.SigningCodeLocked: (423, "SIGNING_CODE_LOCKED"),
    contract_errors.SigningCodeTooSoon: (429, "SIGNING_CODE_TOO_SOON"),
    contract_errors.CertificateNotSigner: (403, "CERTIFICATE_NOT_SIGNER"),
    contract_errors.SigningMethodUnavailable: (422, "SIGNING_METHOD_UNAVAILABLE"),
    contract_ports.CertificateRejected: (422, "CERTIFICATE_REJECTED"),
    contract_ports.LivenessFailed: (422, "LIVENESS_FAILED"),
    contract_ports.SmsUnavailable: (503, "SMS_UNAVAILABLE"),
    contract_ports.CertificateAuthorityUnavailable: (503, "CERTIFICATE_AUTHORITY_UNAVAILABLE"),
    contract_ports.LivenessUnavailable: (503, "LIVENESS_UNAVAILABLE"),
    # Loans: drawdown, repayment, ledger.
    loan_errors.InvalidAmount: (422, "INVALID_AMOUNT"),
    loan_errors.ContractNotEffective: (409, "CONTRACT_NOT_EFFECTIVE"),
    loan_errors.CreditLineExpired: (409, "CREDIT_LINE_EXPIRED"),
    loan_errors.CreditLimitExceeded: (422, "CREDIT_LIMIT_EXCEEDED"),
    loan_errors.ScheduleRefused: (422, "SCHEDULE_REFUSED"),
    loan_errors.PledgeInsufficient: (409, "PLEDGE_INSUFFICIENT"),
    loan_errors.PropertyNotRegistered: (409, "PROPERTY_NOT_REGISTERED"),
    loan_errors.NotTheBorrower: (403, "NOT_THE_BORROWER"),
    loan_errors.RepaymentNotAllowed: (403, "GUARANTOR_CANNOT_REPAY"),
    loan_errors.InsufficientFunds: (409, "INSUFFICIENT_FUNDS"),
    loan_errors.LoanAlreadyClosed: (409, "LOAN_CLOSED"),
    loan_errors.RepaymentExceedsPayoff: (422, "REPAYMENT_EXCEEDS_PAYOFF"),
    loan_errors.PrepaymentNotSchedulable: (422, "PREPAYMENT_NOT_SCHEDULABLE"),
    loan_errors.DrawdownKeyReused: (422, "IDEMPOTENCY_KEY_REUSED"),
    loan_errors.RepaymentKeyReused: (422, "IDEMPOTENCY_KEY_REUSED"),
    LedgerKeyReused: (409, "LEDGER_KEY_REUSED"),
    CoreBankingUnavailable: (503, "CORE_BANKING_UNAVAILABLE"),
    # Black and grey lists.
    list_errors.UnknownListLevel: (422, "UNKNOWN_LIST_LEVEL"),
    list_errors.MatchKeyRequired: (422, "MATCH_KEY_REQUIRED"),
    list_errors.InvalidUnionid: (422, "INVALID_UNIONID"),
    list_errors.InvalidReason: (422, "INVALID_REASON"),
    list_errors.ExpiryInPast: (422, "EXPIRY_IN_PAST"),
    list_errors.AllBankEntryForbidden: (403, "ALL_BANK_ENTRY_FORBIDDEN"),
    list_errors.DuplicateListEntry: (409, "DUPLICATE_LIST_ENTRY"),
    list_errors.LiftAlreadyProposed: (409, "LIFT_ALREADY_PROPOSED"),
    list_errors.InvalidImportFile: (422, "INVALID_IMPORT_FILE"),
    # Invite codes and referrals.
    marketing_errors.UnknownInviteCode: (404, "INVITE_CODE_NOT_FOUND"),
    marketing_errors.NoInviteCodeForActor: (403, "NO_INVITE_CODE"),
    marketing_errors.ReferralRefused: (409, "REFERRAL_REFUSED"),
    marketing_errors.SelfReferral: (409, "SELF_REFERRAL"),
    marketing_errors.ReferralLoop: (409, "REFERRAL_LOOP"),
    marketing_errors.NotANewCustomer: (409, "NOT_A_NEW_CUSTOMER"),
    marketing_errors.ScanCountingUnavailable: (503, "SCAN_COUNTING_UNAVAILABLE"),
    # Campaigns and red packets.
    marketing_errors.CampaignNotFound: (404, "CAMPAIGN_NOT_FOUND"),
    marketing_errors.CampaignInvalid: (422, "CAMPAIGN_INVALID"),
    marketing_errors.CampaignNotEditable: (409, "CAMPAIGN_NOT_EDITABLE"),
    marketing_errors.CampaignNotLive: (409, "CAMPAIGN_NOT_LIVE"),
    marketing_errors.NotARedPacketCampaign: (409, "NOT_A_RED_PACKET_CAMPAIGN"),
    marketing_errors.ChannelNotInCampaign: (403, "CHANNEL_NOT_IN_CAMPAIGN"),
    marketing_errors.AlreadyGrabbed: (409, "ALREADY_GRABBED"),
    marketing_errors.GrabLimitReached: (409, "GRAB_LIMIT_REACHED"),
    marketing_errors.DailyGrabLimitReached: (409, "DAILY_GRAB_LIMIT_REACHED"),
    marketing_errors.RedPacketsGone: (409, "RED_PACKETS_GONE"),
    marketing_errors.CustomerBlacklisted: (403, "CUSTOMER_BLACKLISTED"),
    marketing_errors.CampaignsUnavailable: (503, "CAMPAIGNS_UNAVAILABLE"),
    # Staff-wide and secondary marketing.
    marketing_errors.InvalidQuota: (422, "INVALID_QUOTA"),
    marketing_errors.QuotaExists: (409, "QUOTA_EXISTS"),
    marketing_errors.InvalidIncentiveRule: (422, "INVALID_INCENTIVE_RULE"),
    marketing_errors.NoIncentiveRule: (404, "NO_INCENTIVE_RULE"),
    marketing_errors.SameProduct: (409, "SAME_PRODUCT"),
    marketing_errors.AlreadyReinvited: (409, "ALREADY_REINVITED"),
    marketing_errors.DoNotContact: (409, "DO_NOT_CONTACT"),
    # Warning rule books.
    rulebook.RuleBookRefused: (422, "RULE_BOOK_REFUSED"),
    rulebook.RuleBookNotFound: (404, "RULE_BOOK_NOT_FOUND"),
    rulebook.RuleBookProposalPending: (409, "RULE_BOOK_PROPOSAL_PENDING"),
    rulebook.RuleBookStale: (409, "RULE_BOOK_STALE"),
    # Real-time monitoring: the banks' transaction feed.
    risk_transactions.TransactionEventsRefused: (422, "TRANSACTION_EVENTS_REFUSED"),
    # Validation helpers of the plumbing raise ValueErrors of their own.
    identity_numbers.InvalidIdNumber: (422, "INVALID_ID_NUMBER"),
    identity_numbers.InvalidPhone: (422, "INVALID_PHONE"),
}

SANIC_TABLE: dict[type[Exception], tuple[int, str]] = {
    sanic_exceptions.NotFound: (404, "ROUTE_NOT_FOUND"),
    sanic_exceptions.MethodNotAllowed: (405, "METHOD_NOT_ALLOWED"),
    sanic_exceptions.PayloadTooLarge: (413, "PAYLOAD_TOO_LARGE"),
    sanic_exceptions.RequestTimeout: (408, "REQUEST_TIMEOUT"),
    sanic_exceptions.HeaderExpectationFailed: (417, "EXPECTATION_FAILED"),
    sanic_exceptions.BadRequest: (400, "BAD_REQUEST"),
    sanic_exceptions.RangeNotSatisfiable: (416, "RANGE_NOT_SATISFIABLE"),
}


def _database_lost(exc: Exception) -> bool:
    """A pooled connection the server dropped: asyncpg says so with a plain InterfaceError, a
    class that also covers misusing a connection (a bug, which stays a 500 to be fixed)."""
    return isinstance(exc, asyncpg_errors.InterfaceError) and "connection is closed" in str(exc)


def lookup(exc: Exception) -> tuple[int, str] | None:
    if _database_lost(exc):
        return DATABASE_LOST
    for table in (ERROR_TABLE, SANIC_TABLE):
        for cls in type(exc).__mro__:
            if cls in table:
                return table[cls]
    return None


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


def render(exc: Exception) -> response.HTTPResponse:
    found = lookup(exc)
    if found is None:
        return response.json(
            error_body("INTERNAL_ERROR", "something went wrong on our side", {"request_id": request_id_var.get()}),
            status=500,
        )
    status, code = found
    if isinstance(exc, errors.DomainError):
        message, details = exc.message, exc.details
    elif isinstance(exc, sanic_exceptions.SanicException):
        message, details = _sanic_message(exc, status), None
    elif found == DATABASE_LOST:  # the driver's words are not for clients
        message, details = "the database did not answer; try again shortly", None
    else:  # plumbing ValueErrors: their str never carries the submitted value
        message, details = str(exc), getattr(exc, "reason", None) and {"reason": exc.reason}
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return response.json(error_body(code, message, details), status=status, headers=headers)


def _sanic_message(exc: sanic_exceptions.SanicException, status: int) -> str:
    # Sanic's messages can quote the request (e.g. the path); keep our own short wording.
    return {
        404: "no such route",
        405: "this method is not allowed on this route",
        413: "the request body is too large",
        408: "the request took too long",
    }.get(status, "the request could not be understood")


class JsonErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> response.HTTPResponse:
        found = lookup(exception)
        if isinstance(exception, sanic_exceptions.RequestCancelled):
            # The client hung up before the answer (a phone lost its signal, a health check gave
            # up): nobody will read the response, and nothing on our side went wrong.
            log.info("client went away before the answer")
        elif found is None:
            log.error("unhandled error", exc_info=exception)
        elif found[0] >= 500:
            log.warning("dependency unavailable: %s", exception)
        else:
            log.info("refused %s %s: %s", found[0], found[1], type(exception).__name__)
        return render(exception)
