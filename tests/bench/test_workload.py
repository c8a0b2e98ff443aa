"""The pure parts of the mixed workload (bench/workload.py): percentiles, figures per route, the
mix and the seeded request sequence. No server, database or Redis."""

from __future__ import annotations

import random
from collections import Counter

from bench import workload
from bench.workload import MIX, Planner, Stats, World, percentile, pick_action, route_figures


def world(applicants: int = 5) -> World:
    return World(
        base_url="http://127.0.0.1:1",
        applicants=[f"applicant-{n}" for n in range(applicants)],
        grab_campaign_id=7,
        grabbers=[("grabber", "dev-1")],
        borrowers=[("borrower", 42)],
        bank_key=("HZRCB-soak-core_banking", "secret"),
        accounts=["6222000001", "6222000002", "6222000003"],
        watched=["6222000003"],
    )


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0
    assert percentile([3, 1, 2], 50) == 2  # order of arrival does not matter
    assert percentile([], 99) == 0.0


def test_route_figures_count_answers_by_class_and_time_only_answers():
    answers = [(200, 0.010), (201, 0.020), (409, 0.005), (503, 0.5), (None, 30.0)]
    figures = route_figures("POST /x", answers)
    assert (figures.requests, figures.ok, figures.client_errors, figures.server_errors, figures.no_answer) == (5, 2, 1, 1, 1)
    assert figures.p99_ms == 500.0  # the unanswered request's 30 s is not a latency


def test_figures_since_a_mark_leave_the_warm_up_out():
    stats = Stats()
    stats.record("GET /a", 500, 0.1)
    mark = stats.mark()
    stats.record("GET /a", 200, 0.1)
    stats.record("GET /b", 200, 0.1)
    after = {f.route: f for f in stats.since(mark)}
    assert after["GET /a"].requests == 1 and after["GET /a"].server_errors == 0
    assert after["GET /b"].requests == 1
    assert sum(f.server_errors for f in stats.figures()) == 1


def test_the_mix_is_sent_in_its_shares():
    rng = random.Random(3)
    drawn = Counter(pick_action(rng, MIX) for _ in range(50_000))
    for action, share in MIX.items():
        assert abs(drawn[action] / 50_000 - share) < 0.01, action
    assert abs(sum(MIX.values()) - 1.0) < 1e-9


def test_the_same_seed_makes_the_same_requests_and_each_applicant_applies_once():
    def sequence(seed: int) -> list[tuple]:
        planner = Planner(world(applicants=50), seed, MIX)
        return [(r.method, r.path, r.token, r.key, repr(r.body)) for r in (planner.next() for _ in range(300))]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)
    applied = [token for method, path, token, _, _ in sequence(1) if path == "/api/v1/applications"]
    assert applied and len(applied) == len(set(applied))


def test_applicants_run_out_into_quotes_and_a_later_run_goes_on_from_the_last():
    shared = world(applicants=3)
    first = [Planner(shared, 1, {"apply": 1.0}).next() for _ in range(1)]
    assert first[0].token == "applicant-0" and shared.applied == 1
    planner = Planner(shared, 2, {"apply": 1.0})
    requests = [planner.next() for _ in range(4)]
    assert [r.token for r in requests[:2]] == ["applicant-1", "applicant-2"]
    assert [r.action for r in requests[2:]] == ["quote", "quote"]


def test_transaction_pushes_have_unique_ids_and_are_signed_on_each_send():
    planner = Planner(world(), 1, {"transactions": 1.0})
    pushes = [planner.next() for _ in range(100)]
    ids = [e["transaction_id"] for p in pushes for e in p.body["events"]]
    assert len(ids) == len(set(ids))
    assert all(e["account"] in world().accounts for p in pushes for e in p.body["events"])
    first, again = workload.encode(pushes[0]), workload.encode(pushes[0])
    assert first[1] == again[1]  # the same events, ids and stamps when resent
    assert first[0]["X-Nonce"] != again[0]["X-Nonce"]  # but a fresh nonce, as a replay would be refused
