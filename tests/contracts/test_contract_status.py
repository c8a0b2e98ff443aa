"""The contract's status table, whole (STYLE rule 3), and the application's contract events."""

from __future__ import annotations

import itertools

import pytest

from infra.errors import IllegalTransition
from lending_core.applications import service as applications
from lending_core.contracts import service as contracts

EXPECTED = {
    ("sign_all", "awaiting_signatures"): "effective",
    ("expire", "awaiting_signatures"): "expired",
    ("cancel", "awaiting_signatures"): "cancelled",
    ("close", "effective"): "closed",
}
STATUSES = ["awaiting_signatures", "effective", "expired", "cancelled", "closed"]


def test_the_contract_table_is_exactly_this():
    assert dict(contracts.STATUS.pairs()) == EXPECTED
    assert contracts.STATUS.statuses == set(STATUSES)


@pytest.mark.parametrize(("status", "event"), list(itertools.product(STATUSES, sorted({e for e, _ in EXPECTED}))))
def test_every_event_from_every_status_moves_or_raises(status, event):
    if (event, status) in EXPECTED:
        assert contracts.STATUS.next(status, event) == EXPECTED[(event, status)]
    else:
        with pytest.raises(IllegalTransition) as refused:
            contracts.STATUS.next(status, event)
        assert refused.value.details["allowed_events"] == contracts.STATUS.events_from(status)


def test_an_application_is_contracted_from_approved_only_and_lapses_when_its_contract_expires():
    assert applications.STATUS.next("approved", "contract") == "contracted"
    assert applications.STATUS.next("contracted", "contract_expired") == "lapsed"
    for status in ("submitted", "manual_review", "rejected", "withdrawn", "contracted", "lapsed"):
        with pytest.raises(IllegalTransition):
            applications.STATUS.next(status, "contract")
    # A lapsed approval is neither live nor exposure: the customer may apply again.
    assert "lapsed" not in applications.LIVE and "lapsed" not in applications.EXPOSURE
