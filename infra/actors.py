"""Who is acting: every audit row and every scoped query names one of these."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """A customer, a staff member, a partner app or a system job.

    ``bank_id`` is the member bank a staff member belongs to (None for association staff), or the
    bank a customer is dealing with in this session. ``roles`` are staff roles.
    """

    kind: str  # "customer" | "staff" | "partner" | "system"
    id: int | str
    bank_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    channel: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def is_association(self) -> bool:
        return self.kind == "staff" and self.bank_id is None


def system(job: str) -> Actor:
    return Actor(kind="system", id=job)
