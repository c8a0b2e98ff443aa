"""The sandbox top-up provider's journal (TOPUP_SANDBOX_FILE): a sandbox built again on the same
file remembers its orders, as a real provider does across our worker's restarts."""

from __future__ import annotations

from integrations.topup_sandbox import PLACED, SETTLED, SandboxTopUp, journal_orders
from infra.settings import Settings
from marketing.ports import TOPUP_FAILED, TOPUP_PENDING, TOPUP_SUCCESS
from server.providers import build_providers

PHONE = "13912345678"


async def test_without_a_journal_a_new_sandbox_forgets():
    await SandboxTopUp().top_up(order_id="PC1", phone=PHONE, amount_fen=1000)
    assert await SandboxTopUp().query("PC1") is None


async def test_a_sandbox_built_again_on_its_journal_tops_up_nothing_twice(tmp_path):
    journal = tmp_path / "topup.jsonl"
    first = await SandboxTopUp(journal=journal).top_up(order_id="PC1", phone=PHONE, amount_fen=1000)

    again = SandboxTopUp(journal=journal)
    repeated = await again.top_up(order_id="PC1", phone=PHONE, amount_fen=1000)
    conflict = await again.top_up(order_id="PC1", phone="13912345679", amount_fen=1000)

    assert first.status == repeated.status == TOPUP_SUCCESS
    assert repeated.provider_ref == first.provider_ref
    assert conflict.failure_code == "ORDER_CONFLICT"
    assert [(r["event"], r["order_id"]) for r in journal_orders(journal)] == [(PLACED, "PC1")]
    assert PHONE not in journal.read_text()  # masked and a keyed digest only


async def test_a_pending_order_settles_after_a_restart_and_the_settling_is_journalled(tmp_path):
    journal = tmp_path / "topup.jsonl"
    placed = await SandboxTopUp(journal=journal).top_up(order_id="PC2", phone="13912345674", amount_fen=1000)

    settled = await SandboxTopUp(journal=journal).query("PC2")

    assert (placed.status, settled.status) == (TOPUP_PENDING, TOPUP_SUCCESS)
    assert [r["event"] for r in journal_orders(journal)] == [PLACED, SETTLED]
    assert (await SandboxTopUp(journal=journal).query("PC2")).status == TOPUP_SUCCESS


async def test_a_line_cut_short_by_a_kill_is_skipped(tmp_path):
    journal = tmp_path / "topup.jsonl"
    await SandboxTopUp(journal=journal).top_up(order_id="PC3", phone="13912340000", amount_fen=1000)
    with open(journal, "a", encoding="utf-8") as out:
        out.write('{"event": "placed", "order_id": "PC4", "pho')

    again = SandboxTopUp(journal=journal)
    await again.top_up(order_id="PC5", phone=PHONE, amount_fen=1000)
    after = SandboxTopUp(journal=journal)

    assert (await after.query("PC3")).status == TOPUP_FAILED
    assert await after.query("PC4") is None
    assert (await after.query("PC5")).status == TOPUP_SUCCESS  # not glued to the cut line


def test_the_setting_wires_the_journal(tmp_path):
    journal = tmp_path / "topup.jsonl"
    providers = build_providers(Settings.from_env({"TOPUP_SANDBOX_FILE": str(journal)}), redis=None)
    assert providers.top_up._journal == journal
    assert build_providers(Settings.from_env({}), redis=None).top_up._journal is None
