from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from infra.pii_fields import EncryptedTextField


class Customer(Model):
    """One person, whatever door they came in by. Name, ID number and phone are empty until the
    person gives them (a WeChat visitor may browse before real-name verification)."""

    id = fields.BigIntField(primary_key=True)
    name = EncryptedTextField(null=True)
    id_number = EncryptedTextField(null=True)
    id_number_hash = fields.CharField(max_length=64, null=True, unique=True)
    phone = EncryptedTextField(null=True)
    phone_hash = fields.CharField(max_length=64, null=True, db_index=True)
    real_name_verified_at = fields.DatetimeField(null=True)
    # The member bank the customer last chose on the mini-program, remembered for next time.
    last_bank = fields.ForeignKeyField("models.Bank", null=True, related_name=None, on_delete=fields.RESTRICT)
    # Set when this record was merged into another: the surviving record is the customer.
    merged_into = fields.ForeignKeyField("models.Customer", null=True, related_name=None, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "customer"


class CustomerIdentity(Model):
    """A way of recognising the customer: (kind, issuer, keyed hash of the value).

    kinds: wechat_openid / wechat_unionid (issuer: app id), bank_customer_no (issuer: bank code),
    phone, id_number (issuer: "cn").
    """

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="identities", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=32)
    issuer = fields.CharField(max_length=64)
    value_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_identity"
        unique_together = (("kind", "issuer", "value_hash"),)
        indexes = (("customer_id", "kind"),)


class BankRelationship(Model):
    """The customer's dealings with one member bank."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="relationships", on_delete=fields.CASCADE)
    bank = fields.ForeignKeyField("models.Bank", related_name="customer_relationships", on_delete=fields.RESTRICT)
    home_branch = fields.ForeignKeyField("models.Branch", null=True, related_name=None, on_delete=fields.RESTRICT)
    # True when the bank already knows this person as its customer (M2: registered vs not yet).
    is_bank_customer = fields.BooleanField(default=False)
    first_channel = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bank_relationship"
        unique_together = (("customer", "bank"),)


class Consent(Model):
    """A customer's consent, kept with the exact text they agreed to and when, for one bank.

    Data sources (credit bureau, tax, social security…) may only be queried under a live consent.
    """

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="consents", on_delete=fields.RESTRICT)
    bank = fields.ForeignKeyField("models.Bank", related_name="consents", on_delete=fields.RESTRICT)
    purpose = fields.CharField(max_length=48)
    text_version = fields.CharField(max_length=32)
    text = fields.TextField()
    text_sha256 = fields.CharField(max_length=64)
    # The channel, and for partner platforms the app that collected the consent.
    channel = fields.CharField(max_length=100)
    granted_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "consent"
        indexes = (("customer_id", "bank_id", "purpose"),)


class Firm(Model):
    """A business a customer acts for (enterprise banking, sole-proprietor and small-firm loans)."""

    id = fields.BigIntField(primary_key=True)
    name = fields.CharField(max_length=128)
    # 统一社会信用代码: public business registration data, not personal data.
    unified_social_credit_code = fields.CharField(max_length=18, unique=True)
    legal_representative = EncryptedTextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "firm"


class CustomerFirm(Model):
    """The customer's role in a firm, as a bank asserted it."""

    id = fields.BigIntField(primary_key=True)
    customer = fields.ForeignKeyField("models.Customer", related_name="firms", on_delete=fields.CASCADE)
    firm = fields.ForeignKeyField("models.Firm", related_name="people", on_delete=fields.CASCADE)
    role = fields.CharField(max_length=32)  # "legal_representative" | "agent"
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customer_firm"
        unique_together = (("customer", "firm"),)
