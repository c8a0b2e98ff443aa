"""Invite codes, the touches that carry them, and the referrals they bind.

Foreign keys into the lending core have no backward relation (``related_name=False``): the
lending core knows nothing of marketing, not even as an attribute on its models.

These sit beside ``channels.models.Referral``, which is something else: a partner platform
handing an applicant over, with consent, to a bank (server to server, per partner reference).
Here a person is brought by another person's invite code, and the inviter is a customer or a
staff member.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from infra.pii_fields import EncryptedTextField
from lending_core.customers.service import owns_customer_rows

CUSTOMER, STAFF = "customer", "staff"


class InviteCode(Model):
    """The one invite code of a customer or of a staff member. A staff member's code brings people
    to their bank, a customer's to the bank they were dealing with when they first asked (none yet:
    null, and the person arriving chooses)."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=16, unique=True)
    owner_kind = fields.CharField(max_length=8)  # "customer" | "staff"
    customer = fields.OneToOneField("models.Customer", null=True, related_name=False, on_delete=fields.RESTRICT)
    staff = fields.OneToOneField("models.Staff", null=True, related_name=False, on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "invite_code"


class InviteTouch(Model):
    """One time an invite code was seen: scanned (plain QR, mini-program code, poster), opened from
    a shared card or link, or carried as the ``scene`` of a login. The device and the network are
    kept only as keyed hashes."""

    id = fields.BigIntField(primary_key=True)
    invite_code = fields.ForeignKeyField("models.InviteCode", related_name="touches", on_delete=fields.RESTRICT)
    # How the code was seen: wxacode, qr, poster, share_card, link, login.
    channel = fields.CharField(max_length=16)
    device_hash = fields.CharField(max_length=64, null=True)
    # The /24 (IPv4) or /48 (IPv6) network the request came from, hashed: never one address.
    network_hash = fields.CharField(max_length=64, null=True)
    # Who it was, once known (a scan is anonymous; a login is not).
    customer = fields.ForeignKeyField("models.Customer", null=True, related_name=False, on_delete=fields.RESTRICT)
    at = fields.DatetimeField()

    class Meta:
        table = "invite_touch"
        indexes = (("device_hash", "at"), ("customer_id", "at"), ("invite_code_id", "at"))


class KnownDevice(Model):
    """A device (by keyed hash) a customer or staff member has used: a person invited on an
    inviter's own device is taken to be the inviter."""

    id = fields.BigIntField(primary_key=True)
    device_hash = fields.CharField(max_length=64)
    owner_kind = fields.CharField(max_length=8)  # "customer" | "staff"
    owner_id = fields.BigIntField()
    first_seen_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()

    class Meta:
        table = "known_device"
        unique_together = (("device_hash", "owner_kind", "owner_id"),)
        indexes = (("owner_kind", "owner_id"),)


class InviteReferral(Model):
    """A person (the referee) bound to whoever invited them, once and for good, and how far they
    got: registered, applied, approved, disbursed (each stage with its time).

    A staff inviter carries the branch and bank they belonged to when the person was bound, so
    rollups stay true when staff move. A referral later found to break a rule (the referee turns
    out to share the inviter's phone) is voided: it keeps its history but counts for no one.
    ``campaign_id`` names the campaign the referral counts towards, if any."""

    id = fields.BigIntField(primary_key=True)
    referee = fields.OneToOneField("models.Customer", related_name=False, on_delete=fields.RESTRICT)
    invite_code = fields.ForeignKeyField("models.InviteCode", related_name="referrals", on_delete=fields.RESTRICT)
    inviter_customer = fields.ForeignKeyField("models.Customer", null=True, related_name=False, on_delete=fields.RESTRICT)
    inviter_staff = fields.ForeignKeyField("models.Staff", null=True, related_name=False, on_delete=fields.RESTRICT)
    # "direct": the staff member's own code. "customer": a customer the staff member brought in
    # invited this person, and the staff member shares the credit.
    staff_credit = fields.CharField(max_length=8, null=True)
    branch = fields.ForeignKeyField("models.Branch", null=True, related_name=False, on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    campaign_id = fields.BigIntField(null=True, db_index=True)
    first_touch = fields.ForeignKeyField("models.InviteTouch", null=True, related_name=False, on_delete=fields.RESTRICT)
    first_touch_at = fields.DatetimeField()
    channel = fields.CharField(max_length=32)
    device_hash = fields.CharField(max_length=64, null=True)
    network_hash = fields.CharField(max_length=64, null=True)
    stage = fields.CharField(max_length=16, default="registered")
    bound_at = fields.DatetimeField()
    applied_at = fields.DatetimeField(null=True)
    approved_at = fields.DatetimeField(null=True)
    disbursed_at = fields.DatetimeField(null=True)
    application_id = fields.BigIntField(null=True)
    loan_id = fields.BigIntField(null=True)
    disbursed_principal_fen = fields.BigIntField(null=True)
    voided_at = fields.DatetimeField(null=True)
    void_reason = fields.CharField(max_length=32, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "invite_referral"
        indexes = (("inviter_customer_id", "id"), ("inviter_staff_id", "stage"), ("branch_id", "stage"), ("bank_id", "stage"))


class WxaCodeImage(Model):
    """A mini-program code image WeChat drew for an invite code (``getwxacodeunlimit``). WeChat
    limits those calls and the image never changes, so it is asked for once per code, page and
    width, and kept here rather than in Redis (which keeps nothing across a restart)."""

    id = fields.BigIntField(primary_key=True)
    invite_code = fields.ForeignKeyField("models.InviteCode", related_name="wxa_images", on_delete=fields.CASCADE)
    page = fields.CharField(max_length=128)
    width = fields.IntField()
    png = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "invite_wxa_code"
        unique_together = (("invite_code", "page", "width"),)


# A merge (lending_core.customers.service.merge) moves these to the surviving record. The referee
# and the code owner are not moved: both are unique per customer, and a merge folds a newer record
# into an older one, so an absorbed referee was no new customer after all (see funnel.referrals_of).
owns_customer_rows(InviteReferral, "inviter_customer_id")
owns_customer_rows(InviteTouch, "customer_id")


# --- campaigns and rewards ---

# Campaign kinds and statuses (the status machine is marketing.campaigns.STATUS).
QR_SHARE, REFERRAL_REWARD, PHONE_CREDIT, RED_PACKET = "qr_share", "referral_reward", "phone_credit", "red_packet"
CAMPAIGN_KINDS = (QR_SHARE, REFERRAL_REWARD, PHONE_CREDIT, RED_PACKET)
MILESTONES = ("registered", "applied", "approved", "disbursed")
# Reward statuses: "held" waits for its milestone, "due" has its payout queued in the outbox.
HELD, DUE, PAYING, PAID, FAILED, RETURNED = "held", "due", "paying", "paid", "failed", "returned"
REWARD_STATUSES = (HELD, DUE, PAYING, PAID, FAILED, RETURNED)


class Campaign(Model):
    """A marketing campaign of one bank (or association-wide when ``bank`` is null).

    Money is integer fen. ``committed_fen`` is the sum of rewards granted and not returned: it
    only moves through one conditional UPDATE, so it can never pass ``budget_fen``. A red-packet
    pool is split from ``packet_seed`` (the split is a pure function of the seed and the packet
    terms), which is what lets the pool in Redis be rebuilt from the database."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=16)
    name = fields.CharField(max_length=64)
    status = fields.CharField(max_length=20, default="draft")
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    budget_fen = fields.BigIntField()
    committed_fen = fields.BigIntField(default=0)
    audience = fields.CharField(max_length=32, default="all")
    channels = fields.JSONField(default=list)
    per_person_limit = fields.IntField(default=1)
    per_day_limit = fields.IntField(default=1)
    milestone = fields.CharField(max_length=16, null=True)
    reward_fen = fields.BigIntField(null=True)
    packet_count = fields.IntField(null=True)
    packet_min_fen = fields.BigIntField(null=True)
    packet_max_fen = fields.BigIntField(null=True)
    packet_seed = fields.BigIntField(null=True)
    # Minutes a granted reward waits before it is paid, so the payout's checks (marketing.payouts)
    # see what a farm did after it won: accounts crowding onto the winner's phone.
    payout_hold_minutes = fields.IntField(default=0)
    # The maker-checker request a budget above the bank's threshold waits on.
    change_request_id = fields.BigIntField(null=True)
    created_by = fields.ForeignKeyField("models.Staff", related_name=False, on_delete=fields.RESTRICT)
    approved_by = fields.ForeignKeyField("models.Staff", null=True, related_name=False, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "campaign"
        indexes = (("bank_id", "status"), ("status", "ends_at"))


class Reward(Model):
    """One reward a customer earned in a campaign: a red packet, phone credit or referral cash.

    ``seq`` is the person's n-th reward in the campaign; a red packet also names the packet it
    took (``packet_index``), unique per campaign, so no packet is ever granted twice even if the
    pool in Redis were rebuilt while a grab was in flight."""

    id = fields.BigIntField(primary_key=True)
    campaign = fields.ForeignKeyField("models.Campaign", related_name="rewards", on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=False, on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=16)
    amount_fen = fields.BigIntField()
    status = fields.CharField(max_length=16, default=HELD)
    seq = fields.IntField(default=1)
    packet_index = fields.IntField(null=True)
    referral = fields.ForeignKeyField("models.InviteReferral", null=True, related_name="rewards", on_delete=fields.RESTRICT)
    reason = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    paid_at = fields.DatetimeField(null=True)
    failure_code = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "reward"
        unique_together = (("campaign", "customer", "seq"), ("campaign", "packet_index"))
        indexes = (("customer_id", "id"),)


# --- staff marketing: quotas, incentive rules, secondary-marketing follow-ups and re-invitations ---

# Periods a quota is set for: a month "2026-11" or a quarter "2026-Q4" (marketing.performance).
FOLLOW_UP_OUTCOMES = ("contacted", "no_answer", "interested", "not_interested", "reinvited", "do_not_contact")
REINVITE_CHANNELS = ("sms", "wechat")


class Quota(Model):
    """What a staff member, or a whole branch, is asked to bring in over one period: referrals,
    applications, approvals and the amount disbursed (integer fen). Exactly one of ``staff`` and
    ``branch`` is set, and there is at most one quota per owner and period."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=False, on_delete=fields.RESTRICT)
    staff = fields.ForeignKeyField("models.Staff", null=True, related_name=False, on_delete=fields.RESTRICT)
    branch = fields.ForeignKeyField("models.Branch", null=True, related_name=False, on_delete=fields.RESTRICT)
    period = fields.CharField(max_length=7)
    referrals_target = fields.IntField(default=0)
    applications_target = fields.IntField(default=0)
    approvals_target = fields.IntField(default=0)
    disbursed_target_fen = fields.BigIntField(default=0)
    set_by = fields.ForeignKeyField("models.Staff", related_name=False, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff_quota"
        # A null owner never collides, so each pair binds only the quotas of its own kind.
        unique_together = (("staff", "period"), ("branch", "period"))
        indexes = (("bank_id", "period"),)


class IncentiveRule(Model):
    """How a campaign pays the staff who bring loans in: a fixed amount per disbursed loan plus
    basis points of the amount disbursed, with a share for loans to people a staff member's
    customers invited, capped per staff member over the campaign. All money in integer fen."""

    id = fields.BigIntField(primary_key=True)
    # The campaign's id (a plain column, as on ``InviteReferral``: the rule is looked up by it).
    campaign_id = fields.BigIntField(unique=True)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    per_disbursed_loan_fen = fields.BigIntField(default=0)
    disbursed_bps = fields.IntField(default=0)
    indirect_share_bps = fields.IntField(default=10000)
    cap_fen = fields.BigIntField(null=True)
    set_by = fields.ForeignKeyField("models.Staff", related_name=False, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "staff_incentive_rule"


class FollowUp(Model):
    """An account manager's follow-up with a declined applicant (secondary marketing): what was
    said, how it went and when to call again. The note is free text typed by staff, so it is
    kept encrypted and shown scrubbed of anything that looks like an ID, phone or card number."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=False, on_delete=fields.RESTRICT)
    application = fields.ForeignKeyField("models.Application", related_name=False, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=False, on_delete=fields.RESTRICT)
    staff = fields.ForeignKeyField("models.Staff", related_name=False, on_delete=fields.RESTRICT)
    note = EncryptedTextField()
    outcome = fields.CharField(max_length=16)
    next_contact_on = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "secondary_follow_up"
        indexes = (("application_id", "id"), ("bank_id", "next_contact_on"))


class Reinvitation(Model):
    """A declined applicant invited to another product of the bank. The message itself goes out
    through the outbox (topic ``marketing.reinvite``) to the SMS or WeChat sender, which looks up
    the phone or openid by customer id. Inviting is marketing, never a credit decision."""

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=False, on_delete=fields.RESTRICT)
    application = fields.ForeignKeyField("models.Application", related_name=False, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=False, on_delete=fields.RESTRICT)
    product = fields.ForeignKeyField("models.Product", related_name=False, on_delete=fields.RESTRICT)
    staff = fields.ForeignKeyField("models.Staff", related_name=False, on_delete=fields.RESTRICT)
    invite_code = fields.ForeignKeyField("models.InviteCode", null=True, related_name=False, on_delete=fields.RESTRICT)
    channel = fields.CharField(max_length=8)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "secondary_reinvitation"
        unique_together = (("application", "product"),)
        indexes = (("customer_id", "id"),)


owns_customer_rows(FollowUp, "customer_id")
owns_customer_rows(Reinvitation, "customer_id")


# --- payouts ---

WECHAT_RED_PACKET, PHONE_TOPUP = "wechat_red_packet", "phone_topup"


class Payout(Model):
    """How one reward is paid: a WeChat Pay mini-program red packet or a phone top-up, under one
    bill number fixed by the first attempt (WeChat Pay's ``mch_billno``, the top-up provider's
    order id) and derived from the outbox message that asked for it, so every retry names the
    same payment and none can pay twice. ``business_date`` is the Asia/Shanghai date the bill
    number carries, which reconciliation goes by. ``package`` is what the mini-program hands to
    ``wx.sendBizRedPacket`` for the customer to open the packet. Money in integer fen."""

    id = fields.BigIntField(primary_key=True)
    reward = fields.OneToOneField("models.Reward", related_name="payout", on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=False, on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=False, on_delete=fields.RESTRICT)
    channel = fields.CharField(max_length=24)
    bill_no = fields.CharField(max_length=32, unique=True)
    business_date = fields.DateField()
    outbox_message_id = fields.BigIntField()
    amount_fen = fields.BigIntField()
    # paying, paid, failed (refused for good: the amount went back to the budget) or unknown
    # (every retry spent without a final answer: reconciliation settles it).
    status = fields.CharField(max_length=16, default="paying")
    attempts = fields.IntField(default=0)
    provider_ref = fields.CharField(max_length=64, null=True)
    package = fields.TextField(null=True)
    last_error_code = fields.CharField(max_length=32, null=True)
    failure_code = fields.CharField(max_length=32, null=True)
    failure_reason = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    paid_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payout"
        indexes = (("business_date", "channel"), ("customer_id", "id"))


owns_customer_rows(Payout, "customer_id")
