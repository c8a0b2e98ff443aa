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
