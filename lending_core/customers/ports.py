"""Outside parties the customer area needs. Implementations: ``integrations``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from infra.errors import DependencyUnavailable


@dataclass(frozen=True)
class RealNameCheck:
    """The answer of a three-factor check (name + ID number + phone, as the telecom operator
    and the public-security ID database know them)."""

    matched: bool
    reason: str | None = None  # "name_id_mismatch" | "phone_not_owned" when not matched


class VerificationUnavailable(DependencyUnavailable):
    """The real-name verification service did not answer; try again shortly."""


class IdentityVerifier(Protocol):
    async def verify(self, *, name: str, id_number: str, phone: str) -> RealNameCheck: ...
