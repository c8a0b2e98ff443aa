from __future__ import annotations

from infra.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound, PermissionDenied


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


# --- staff marketing: quotas, incentives, secondary marketing ---


class InvalidQuota(InvalidInput):
    """A quota names one staff member or one branch of a bank, a month "YYYY-MM" or quarter
    "YYYY-Qn", and at least one positive target."""


class QuotaExists(Conflict):
    """This staff member or branch already has a quota for that period: change that one."""


class InvalidIncentiveRule(InvalidInput):
    """An incentive rule pays fen per disbursed loan and/or basis points of the amount, within bounds."""


class NoIncentiveRule(NotFound):
    """This campaign has no incentive rule for staff."""


class SameProduct(Conflict):
    """A re-invitation is to another product than the one the applicant was declined for."""


class AlreadyReinvited(Conflict):
    """This applicant has already been re-invited to that product."""


class DoNotContact(Conflict):
    """The applicant asked not to be contacted again (a follow-up recorded it)."""


# --- campaigns and red packets ---


class CampaignNotFound(NotFound):
    """No such campaign, or not one the caller may see."""


class CampaignInvalid(InvalidInput):
    """The campaign's terms do not hold together (each problem is named in the details)."""


class CampaignNotEditable(Conflict):
    """Only a draft campaign can be changed: withdraw it to draft first."""


class CampaignNotLive(Conflict):
    """The campaign is not live: not started yet, paused or ended."""


class NotARedPacketCampaign(Conflict):
    """Red packets can only be grabbed from a red-packet campaign."""


class ChannelNotInCampaign(PermissionDenied):
    """This campaign does not run on the channel the customer came in by."""


class AlreadyGrabbed(Conflict):
    """The customer already grabbed a red packet from this campaign."""


class GrabLimitReached(Conflict):
    """The customer has grabbed as many red packets as the campaign allows one person."""


class DailyGrabLimitReached(Conflict):
    """The customer has grabbed as many red packets today as the campaign allows a person a day."""


class RedPacketsGone(Conflict):
    """Every red packet of this campaign has been taken."""


class CustomerBlacklisted(PermissionDenied):
    """Customers on the prohibit-level blacklist earn no rewards."""


class CampaignsUnavailable(DependencyUnavailable):
    """Campaign stock cannot be reached just now; nothing was taken, try again shortly."""
