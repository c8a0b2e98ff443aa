from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from infra.pii_fields import EncryptedTextField


class Contract(Model):
    """A credit contract (授信合同) made from an approved application. It freezes the terms every
    party signs; once all have signed it is effective and is the credit line that drawdowns
    (借据) draw on until ``line_expires_on``. Amounts in fen, rates in basis points.

    status: awaiting_signatures → effective | expired | cancelled; effective → closed.
    """

    id = fields.BigIntField(primary_key=True)
    bank = fields.ForeignKeyField("models.Bank", related_name=None, on_delete=fields.RESTRICT)
    application = fields.OneToOneField("models.Application", related_name="contract", on_delete=fields.RESTRICT)
    customer = fields.ForeignKeyField("models.Customer", related_name=None, on_delete=fields.RESTRICT)
    product = fields.ForeignKeyField("models.Product", related_name=None, on_delete=fields.RESTRICT)
    product_version = fields.IntField()
    template = fields.CharField(max_length=48)
    limit_fen = fields.BigIntField()
    rate_bps = fields.IntField()
    penalty_rate_bps = fields.IntField()
    term_months = fields.IntField()  # of each drawdown
    repayment_method = fields.CharField(max_length=24)
    collateral = fields.CharField(max_length=24)
    # The product's servicing terms as signed: allocation order, early-repayment fee, day basis.
    servicing = fields.JSONField()
    document_html = fields.TextField()
    document_sha256 = fields.CharField(max_length=64)
    status = fields.CharField(max_length=24, db_index=True)
    sign_by = fields.DatetimeField()
    effective_at = fields.DatetimeField(null=True)
    line_expires_on = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "contract"
        indexes = (("customer_id", "status"), ("bank_id", "status"))


class ContractParty(Model):
    """Someone who must sign: the borrower, a guarantor or a co-borrower. A party who is not yet
    a customer is known by name and phone until they sign in and prove who they are."""

    id = fields.BigIntField(primary_key=True)
    contract = fields.ForeignKeyField("models.Contract", related_name="parties", on_delete=fields.RESTRICT)
    role = fields.CharField(max_length=16)  # borrower | guarantor | co_borrower
    customer = fields.ForeignKeyField("models.Customer", null=True, related_name=None, on_delete=fields.RESTRICT)
    name = EncryptedTextField()
    phone = EncryptedTextField()
    phone_hash = fields.CharField(max_length=64, db_index=True)
    id_number_hash = fields.CharField(max_length=64, null=True)
    invited_at = fields.DatetimeField(null=True)
    # The one-time signing code last sent: only its keyed hash, when it lapses, wrong tries so far.
    code_hash = fields.CharField(max_length=64, null=True)
    code_expires_at = fields.DatetimeField(null=True)
    code_attempts = fields.IntField(default=0)
    signed_at = fields.DatetimeField(null=True)
    signature_method = fields.CharField(max_length=24, null=True)  # sms_code | ca_certificate
    # What the method proved: certificate serial and issuer, liveness check id… (no personal data)
    signature_detail = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contract_party"
        unique_together = (("contract_id", "role", "phone_hash"),)
        indexes = (("customer_id",),)


class EvidenceRecord(Model):
    """One entry of a contract's hash-chained evidence log, as ``contracts.evidence`` defines it,
    with the notary's receipt once it has one. Rows are only ever added (and a receipt attached)."""

    id = fields.BigIntField(primary_key=True)
    contract = fields.ForeignKeyField("models.Contract", related_name="evidence", on_delete=fields.RESTRICT)
    sequence = fields.IntField()
    kind = fields.CharField(max_length=24)
    occurred_at = fields.DatetimeField()
    document_sha256 = fields.CharField(max_length=64)
    detail = fields.JSONField()
    previous_hash = fields.CharField(max_length=64)
    entry_hash = fields.CharField(max_length=64)
    receipt = fields.JSONField(null=True)

    class Meta:
        table = "evidence_record"
        unique_together = (("contract_id", "sequence"),)
