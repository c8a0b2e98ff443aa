from __future__ import annotations

from infra.errors import Conflict, DependencyUnavailable, NotFound, PermissionDenied


class UnknownInviteCode(NotFound):
    """No such invite code (or its owner can no longer invite)."""


class NoInviteCodeForActor(PermissionDenied):
    """Invite codes are for customers and staff members."""


class ReferralRefused(Conflict):
    """The binding rules refuse to attribute this person to this inviter."""

    reason = "refused"


class SelfReferral(ReferralRefused):
    """A person cannot be their own referee (same person, same device or same phone)."""

    reason = "self_referral"

    def __init__(self, by: str):
        super().__init__(details={"by": by})
        self.by = by


class ReferralLoop(ReferralRefused):
    """The inviter was themselves brought in, directly or down a chain, by this person."""

    reason = "loop"


class NotANewCustomer(ReferralRefused):
    """Only new customers can be referred: this person was known before the invite reached them."""

    reason = "not_new"


class ScanCountingUnavailable(DependencyUnavailable):
    """Scans cannot be counted against their velocity limits just now; try again shortly."""
