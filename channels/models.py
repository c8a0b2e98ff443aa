from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from infra.pii_fields import EncryptedTextField
from lending_core.customers.service import owns_customer_rows


class AuthSession(Model):
    """A signed-in session: the holder of its refresh token may mint short-lived access tokens.

    Refresh tokens rotate on every use; presenting an already-used one means it was copied, so the
    whole family (every session descended from one sign-in) is revoked.
    """

    id = fields.BigIntField(primary_key=True)
    family = fields.CharField(max_length=32, db_index=True)
    subject_kind = fields.CharField(max_length=16)  # "customer" | "staff"
    subject_id = fields.BigIntField()
    bank_id = fields.BigIntField(null=True)
    channel = fields.CharField(max_length=32)
    refresh_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_session"
        indexes = (("subject_kind", "subject_id"),)


class WeChatAccount(Model):
    """A customer's mini-program account: the openid (needed in clear to send subscribe messages)
    and WeChat's session key (needed to open the older encrypted phone data) — both encrypted,
    kept server-side only, never sent to the client."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="wechat_accounts", on_delete=fields.CASCADE)
    appid = fields.CharField(max_length=32)
    openid_hash = fields.CharField(max_length=64)
    openid = EncryptedTextField()
    session_key = EncryptedTextField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "wechat_account"
        unique_together = (("appid", "openid_hash"),)
        indexes = (("customer_id", "appid"),)


class ChannelCredential(Model):
    """The key a member bank's app (mobile banking, enterprise banking, direct bank) signs its
    server-to-server requests with: one per channel and bank."""

    id = fields.BigIntField(primary_key=True)
    key_id = fields.CharField(max_length=64, unique=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    channel = fields.CharField(max_length=32)
    secret = EncryptedTextField()
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "channel_credential"
        unique_together = (("bank", "channel", "key_id"),)


class PartnerApp(Model):
    """A registered government or partner platform calling the open API."""

    id = fields.BigIntField(primary_key=True)
    app_key = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    secret = EncryptedTextField()
    scopes = fields.JSONField(default=list)
    rate_limit_per_minute = fields.IntField(default=120)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partner_app"


class Referral(Model):
    """An applicant a partner platform handed over, with consent, to a member bank."""

    id = fields.BigIntField(primary_key=True)
    partner = fields.ForeignKeyField("models.PartnerApp", related_name="referrals", on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=None, on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    # The partner's own reference: handing the same applicant over twice returns the first referral.
    external_ref = fields.CharField(max_length=64)
    product_code = fields.CharField(max_length=32, null=True)
    status = fields.CharField(max_length=24, default="handed_over")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "referral"
        unique_together = (("partner", "external_ref"),)


# Merging two customer records (lending_core.customers.service.merge) moves these to the survivor.
owns_customer_rows(WeChatAccount)
owns_customer_rows(Referral)
