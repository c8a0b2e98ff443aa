"""The faults drill's pure parts: its seeded schedule and its exactly-once payment check."""

from __future__ import annotations

from bench.faults_drill import KINDS, QUIET_END_SECONDS, REDIS_OUTAGE_SECONDS, STOP_REDIS, payments_check, plan


def test_the_schedule_is_the_seeds_alone_and_deals_every_kind():
    schedule = plan(1, 240)
    assert schedule == plan(1, 240)
    assert schedule != plan(2, 240)
    assert {p.kind for p in schedule[: len(KINDS)]} == set(KINDS)
    assert all(p.at < 240 - QUIET_END_SECONDS for p in schedule)
    assert [p.at for p in schedule] == sorted(p.at for p in schedule)


def test_a_redis_outage_lasts_5_to_20_seconds_and_nothing_is_injected_meanwhile():
    schedule = plan(3, 600)
    for planned, following in zip(schedule, schedule[1:]):
        if planned.kind == STOP_REDIS:
            assert REDIS_OUTAGE_SECONDS[0] <= planned.seconds <= REDIS_OUTAGE_SECONDS[1]
            assert following.at >= planned.at + planned.seconds
        else:
            assert planned.seconds == 0


def _world():
    rewards = [
        {"id": 1, "kind": "red_packet", "status": "paid", "amount_fen": 50},
        {"id": 2, "kind": "phone_credit", "status": "paid", "amount_fen": 1000},
        {"id": 3, "kind": "red_packet", "status": "returned", "amount_fen": 70},
    ]
    payouts = [
        {"reward_id": 1, "bill_no": "B1", "status": "paid", "channel": "wechat_red_packet"},
        {"reward_id": 2, "bill_no": "PC1", "status": "paid", "channel": "phone_topup"},
        {"reward_id": 3, "bill_no": "B3", "status": "failed", "channel": "wechat_red_packet"},
    ]
    packets = [{"mch_billno": "B1", "total_amount": 50, "requests": 2}]
    orders = [{"event": "placed", "order_id": "PC1", "status": "pending", "amount_fen": 1000},
              {"event": "settled", "order_id": "PC1", "status": "success", "amount_fen": 1000}]
    campaigns = [{"id": 1, "budget_fen": 10_000, "committed_fen": 1_050}]
    return rewards, payouts, packets, orders, campaigns


def test_each_paid_reward_with_one_payment_passes():
    check = payments_check(*_world())
    assert check.passed, check.figures


def test_a_top_up_placed_twice_fails():
    rewards, payouts, packets, orders, campaigns = _world()
    orders.append({"event": "placed", "order_id": "PC1", "status": "success", "amount_fen": 1000})
    check = payments_check(rewards, payouts, packets, orders, campaigns)
    assert not check.passed
    assert "top-up order placed more than once" in check.figures[-1]


def test_money_paid_out_for_a_returned_reward_fails():
    rewards, payouts, packets, orders, campaigns = _world()
    packets.append({"mch_billno": "B3", "total_amount": 70})
    check = payments_check(rewards, payouts, packets, orders, campaigns)
    assert not check.passed
    assert "WeChat Pay record without a paid reward" in check.figures[-1]


def test_a_paid_reward_without_its_payment_fails():
    rewards, payouts, _, orders, campaigns = _world()
    check = payments_check(rewards, payouts, [], orders, campaigns)
    assert not check.passed


def test_a_reward_left_paying_or_a_campaign_over_budget_fails():
    rewards, payouts, packets, orders, campaigns = _world()
    rewards.append({"id": 4, "kind": "red_packet", "status": "paying", "amount_fen": 10})
    assert not payments_check(rewards, payouts, packets, orders, campaigns).passed
    rewards, payouts, packets, orders, campaigns = _world()
    campaigns[0]["committed_fen"] = 10_001
    assert not payments_check(rewards, payouts, packets, orders, campaigns).passed

