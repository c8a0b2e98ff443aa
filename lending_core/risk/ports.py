"""What the warning batch needs from outside: feeds that answer a schema category's fields for
many customers at once (the credit bureau's, the courts', the tax bureau's, the social-security
and provident-fund centres', the property registry's and the bank's own core). A feed with a
bulk interface takes up to ``batch_size`` people per call; a per-customer one has batch_size 1.

``fetch`` raises ``SourceUnavailable`` when the source cannot answer the call; a person missing
from the answer is a failure for that person only. Values are the schema's: integer fen, counts,
flags, closed text values, ``None`` where the source has nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from lending_core.datasources.ports import SourceUnavailable

__all__ = ["Person", "SnapshotFeed", "SourceUnavailable"]


@dataclass(frozen=True)
class Person:
    customer_id: int
    id_number: str
    name: str

    def __repr__(self) -> str:  # never the clear ID number or name in a log line
        return f"Person({self.customer_id})"


class SnapshotFeed(Protocol):
    group: str  # the schema category it fills
    batch_size: int

    async def fetch(self, people: Sequence[Person], *, bank_code: str) -> Mapping[int, Mapping[str, Any]]:
        """The group's fields per customer id."""
        ...
