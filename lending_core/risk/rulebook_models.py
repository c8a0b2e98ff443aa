"""The warning rule book's versions in the database (the source of truth once imported).

A book is the association's (``bank`` null, scope "association") or one member bank's own
(scope "bank:<id>"), which replaces the association's for that bank. Each version holds the
whole book as data: ``rules`` maps a category code to its list of rule tables, exactly as the
shipped catalogue files write them. Published versions never change.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# (No semicolons in model docstrings: tortoise copies them into SQL comments, and its SQLite
# migration runner splits statements at semicolons.)

ASSOCIATION_SCOPE = "association"


def bank_scope(bank_id: int) -> str:
    return f"bank:{bank_id}"


class RuleBook(Model):
    """A warning rule book, the association's or one bank's own, and which version of it is live."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=32, unique=True)  # "association" or "bank:<id>"
    bank = fields.ForeignKeyField("models.Bank", null=True, related_name=None, on_delete=fields.RESTRICT)
    published_version = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "rule_book"


class RuleBookVersion(Model):
    """One version of a rule book: proposed by one person, published when a second approves.
    status: proposed, published, retired (a later one was published), rejected or withdrawn
    (its change request was). ``based_on`` is the live version the proposal started from,
    ``digest`` the SHA-256 of the canonical rules (equal digests, equal books)."""

    id = fields.BigIntField(primary_key=True)
    book = fields.ForeignKeyField("models.RuleBook", related_name="versions", on_delete=fields.RESTRICT)
    version = fields.IntField()
    rules = fields.JSONField()
    rule_count = fields.IntField()
    digest = fields.CharField(max_length=64)
    based_on = fields.IntField(null=True)
    status = fields.CharField(max_length=16, default="proposed")
    note = fields.TextField(default="")
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    published_at = fields.DatetimeField(null=True)

    class Meta:
        table = "rule_book_version"
        unique_together = (("book", "version"),)
