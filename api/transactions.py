"""The member banks' core-banking transaction feed (real-time monitoring, M17): a bank's core
pushes batches of account transactions, signed like its apps' requests with the key of its
``core_banking`` channel. Each event is stored before the answer; the bank's own transaction id
makes a resent event harmless (answered ``duplicate``, stored once), so no Idempotency-Key is
needed. See ``lending_core.risk.transactions``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sanic import Blueprint, Request, response
from sanic_ext.extensions.openapi import openapi

from api.signed import signed
from api.validation import Body, documented_body, parse_json
from channels import bank_apps
from infra.streams import Stream
from lending_core.risk import transactions

bp = Blueprint("bank_transactions", url_prefix="/api/v1/bank")


class TransactionsBody(Body):
    events: list[Any] = Field(
        min_length=1, max_length=transactions.MAX_EVENTS,
        description=(
            "each {transaction_id, account, direction: in|out, amount_fen, balance_after_fen, counterparty_account?, "
            "occurred_at (ISO 8601 with offset)}; the counterparty's account is kept only as a keyed hash"
        ),
    )


@bp.post("/transactions")
@openapi.summary("A member bank's core pushes account transactions for real-time monitoring (signed request)")
@openapi.description(
    "200: every event stored (status accepted, or duplicate when sent before) and `matched` false for accounts we do "
    "not know. 422 TRANSACTION_EVENTS_REFUSED: the malformed events are named with their problems and not stored; "
    "the others in the batch were stored."
)
@documented_body(TransactionsBody)
@signed(bank_apps.load_credential)
async def push_transactions(request: Request):
    app = request.ctx.principal
    bank_apps.check_channel(app, transactions.FEED_CHANNEL)
    body = parse_json(request, TransactionsBody)
    queue = Stream(request.app.ctx.redis, transactions.stream_key(request.app.ctx.settings.redis_key_prefix), transactions.GROUP)
    report = await transactions.ingest(app.bank.id, body.events, queue=queue)
    return response.json({"counts": report.counts, "events": report.events})
