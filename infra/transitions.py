"""Status changes as a table of (event, from-status) → to-status (STYLE rule 3).

An event that the table does not allow from the current status raises ``IllegalTransition``
naming both — never a silent no-op (Fineract's mistake).
"""

from __future__ import annotations

from typing import Iterable, Mapping

from infra.errors import IllegalTransition


class TransitionTable:
    def __init__(self, name: str, table: Mapping[tuple[str, str], str]):
        self.name = name
        self._table = dict(table)

    def next(self, status: str, event: str) -> str:
        try:
            return self._table[(event, status)]
        except KeyError:
            raise IllegalTransition(
                f"{self.name}: cannot {event} when {status}",
                details={"status": status, "event": event, "allowed_events": self.events_from(status)},
            ) from None

    def events_from(self, status: str) -> list[str]:
        return sorted(event for (event, source) in self._table if source == status)

    @property
    def statuses(self) -> set[str]:
        return {s for (_, s) in self._table} | set(self._table.values())

    @property
    def events(self) -> set[str]:
        return {e for (e, _) in self._table}

    def pairs(self) -> Iterable[tuple[tuple[str, str], str]]:
        return self._table.items()
