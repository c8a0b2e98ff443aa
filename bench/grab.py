"""The red-packet grab under wrk, beside the bare endpoint (``python -m bench.run --only grab``).

Many customers (each with a signed token and a device id) grab from one live campaign whose pool
is big enough not to run dry during the runs, so every answer counted is a win: committed to the
database with its payout in the outbox before it is sent. Velocity limits are counted on every
grab, set high enough not to refuse the load; per-person limits likewise. After the runs the
database and Redis are checked against each other: no packet granted twice, nothing over budget,
as many rewards as packets gone from the pool.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

from bench import applicants, payouts

CUSTOMERS = 5_000
PACKETS = 1_000_000
PACKET_MIN_FEN, PACKET_MAX_FEN = 30, 200
# The API server's velocity limits for the run: counted on every grab, never reached.
UNLIMITED = {"GRAB_LIMIT_DEVICE_PER_MINUTE": "1000000000", "GRAB_LIMIT_ADDRESS_PER_MINUTE": "1000000000", "GRAB_LIMIT_CUSTOMER_PER_MINUTE": "1000000000"}


async def prepare(settings, *, customers: int, packets: int) -> tuple[int, list[str]]:
    """Customers with tokens, and a live red-packet campaign of HZRCB with its pool loaded."""
    from bench.run import app_stores

    async with app_stores(settings, redis=True) as redis:
        tokens = await applicants.create(customers, bank_code="HZRCB", purposes=(), secret_key=settings.secret_key, channel="wechat_miniprogram", seed=11,
                                        wechat_appid=settings.wechat_appid)
        return await open_campaign(settings, redis, packets=packets, per_person=packets // customers + 1), tokens


async def open_campaign(settings, redis, *, packets: int, per_person: int) -> int:
    """A live red-packet campaign of HZRCB with its pool loaded (on an open database); its id."""
    from datetime import timedelta

    from infra import clock
    from lending_core.org import service as org
    from lending_core.org.models import Staff
    from marketing import campaigns, red_packets

    marketer = org.staff_actor(await Staff.get(username="hz.marketer"))
    budget = packets * (PACKET_MIN_FEN + PACKET_MAX_FEN) // 2
    terms = campaigns.Terms(
        kind="red_packet",
        name="压测红包",
        starts_at=clock.now() - timedelta(minutes=1),
        ends_at=clock.now() + timedelta(hours=6),
        budget_fen=budget,
        per_person_limit=per_person,
        per_day_limit=per_person,
        packet_count=packets,
        packet_min_fen=PACKET_MIN_FEN,
        packet_max_fen=PACKET_MAX_FEN,
    )
    made = await campaigns.create(marketer, terms)
    # The bench approves its own budget: the maker-checker path is the tests' business.
    await campaigns.submit(marketer, made.id, thresholds=campaigns.ApprovalThresholds(default_fen=budget))
    await red_packets.rebuild_pool(redis, made.id, key_prefix=settings.redis_key_prefix)
    return made.id


async def audit_run(settings, campaign_id: int) -> dict:
    """What the database and Redis say after the runs, and whether they agree."""
    from bench.run import app_stores
    from infra import sql
    from marketing import red_packets
    from marketing.models import Campaign

    async with app_stores(settings, redis=True) as redis:
        campaign = await Campaign.get(id=campaign_id)
        row = await sql.fetch_one(
            "SELECT COUNT(*) AS rewards, COUNT(DISTINCT packet_index) AS packets, "
            # A returned reward (its payout refused for good) gave its amount back to the budget.
            "COALESCE(SUM(amount_fen) FILTER (WHERE status <> 'returned'), 0) AS amount_fen, "
            "(SELECT COUNT(*) FROM outbox_message WHERE topic = 'marketing.pay_reward') AS payouts FROM reward WHERE campaign_id = :id",
            id=campaign_id,
        )
        state = await red_packets.pool_state(redis, campaign_id, key_prefix=settings.redis_key_prefix)
        split = red_packets.split_of(campaign)
        gone = campaign.packet_count - state["packets_left"]
        return {
            "rewards": row["rewards"],
            "distinct_packets": row["packets"],
            "amount_fen": int(row["amount_fen"]),
            "committed_fen": campaign.committed_fen,
            "budget_fen": campaign.budget_fen,
            "payouts_queued": row["payouts"],
            "packets_left": state["packets_left"],
            "packets_gone_from_redis": gone,
            "redis_taken": sum(state["taken"].values()),
            "oversold": row["rewards"] != row["packets"] or campaign.committed_fen > campaign.budget_fen or gone != row["rewards"]
            or sum(state["taken"].values()) != row["rewards"] or int(row["amount_fen"]) != campaign.committed_fen,
            "split_fen": sum(split),
        }


def ready(api_url: str, seconds: float = 120) -> None:
    """Wait until the API answers (its port accepts connections well before its start-up is done)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the API at {api_url} did not become ready")


def bench_grab(args, bare_url: str, api_url: str, api_port: int, env: dict) -> None:
    from bench import run as runner
    from infra.settings import Settings

    settings = Settings.from_env(env)
    started = time.monotonic()
    campaign_id, tokens = asyncio.run(prepare(settings, customers=args.grab_customers, packets=args.grab_packets))
    made_in = time.monotonic() - started
    token_file = runner.ROOT / "var" / "bench-grab-tokens.txt"
    token_file.parent.mkdir(exist_ok=True)
    token_file.write_text("\n".join(tokens) + "\n")
    lua_env = {"BENCH_TOKENS": str(token_file), "BENCH_THREADS": "2", "BENCH_CAMPAIGN": str(campaign_id)}
    server_env = {**env, **UNLIMITED}

    def packets_left() -> int:
        key = f"{settings.redis_key_prefix}{{cmp:{campaign_id}}}:pool"
        return int(subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "llen", key], check=True, capture_output=True, text=True).stdout.strip())

    bare_runs, rows, ran_dry = [], [], False
    for workers in args.api_workers:
        grab_runs = []
        with runner.api_server(api_port, server_env, workers=workers):
            ready(api_url)
            runner.wrk(api_url, 3, "grab.lua", lua_env)  # warm-up: connections, caches, the desk's loops
            for _ in range(args.runs):
                bare_runs.append(runner.wrk(bare_url, args.duration))
                grab_runs.append(runner.wrk(api_url, args.duration, "grab.lua", lua_env))
                ran_dry = ran_dry or packets_left() == 0
        rows.append((workers, runner.median_load(grab_runs)))
    bare = runner.median_load(bare_runs)
    checked = asyncio.run(audit_run(settings, campaign_id))

    table = [runner.row(runner.BARE_LABEL, bare, bare) + "  |"]
    for workers, load in rows:
        met = load.ok_per_second >= 0.5 * bare.ok_per_second and load.p99_ms <= 3 * bare.p99_ms and not checked["oversold"] and not ran_dry
        api = f"{workers} worker{'s' if workers > 1 else ''}"
        table.append(
            runner.row(f"`POST /api/v1/campaigns/{{id}}/red-packets/grab`, API {api}", load, bare)
            + f" ≥ 50% of bare, p99 ≤ 3× bare ({3 * bare.p99_ms:.1f} ms), no oversell: {'met' if met else 'MISSED'} |"
        )
    newline = "\n"
    body = f"""## Marketing: red-packet grab

{runner.header(args).replace("`python -m bench.run --duration", "`python -m bench.run --only grab --duration")}

| endpoint | 2xx/s | vs bare | p50 ms | p99 ms | non-2xx | target |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
{newline.join(table)}

Only wins count: {args.grab_customers:,} customers (made in {made_in:.0f} s with their tokens) grab in turn, each with its
own device id, from one live campaign of {args.grab_packets:,} packets (pool {'RAN DRY: raise --grab-packets' if ran_dry else 'never ran dry'}), per-person
limits above what a run can reach. Each win is decided by the Lua script (velocity counters per
device, address and customer, per-person and per-day limits, LPOP) and answered only after its
reward row (status due), its budget commitment and its `marketing.pay_reward` outbox message are
committed; concurrent grabs share one script call and one commit per batch (the worker's grab desk).

After the runs: {checked['rewards']:,} rewards on {checked['distinct_packets']:,} distinct packets, {checked['packets_gone_from_redis']:,} packets gone
from the Redis pool, {checked['redis_taken']:,} grabs counted by Redis, {checked['payouts_queued']:,} payouts queued; {checked['amount_fen']:,} fen granted
= {checked['committed_fen']:,} fen committed of a {checked['budget_fen']:,} fen budget. Oversell: {'YES' if checked['oversold'] else 'none'}.
"""
    runner.write_section("grab", body)
    print(body)
    payouts.bench_payouts(args, settings, env, env["WECHAT_API_BASE"])
