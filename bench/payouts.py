"""The outbox relay paying the grab's winners (run by ``python -m bench.run --only grab`` after the grab).

The grab leaves every winner's payout in the outbox. One relay process (``server.cli relay``, as
production runs it) pays them through wechatpy against the fake WeChat Pay, for ``--duration``
seconds at a time, alternately one payout at a time (``PAYOUTS_AT_ONCE=1``: the baseline) and side
by side (the default). A window opens a few seconds after the relay starts and counts the rewards
that became paid in it and the relay's CPU. Afterwards every paid reward must
have exactly one WeChat Pay record, of its amount, and WeChat Pay no payment we did not record.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench import processes
from bench import run as runner

PAID = "SELECT COUNT(*) AS n FROM reward WHERE status = 'paid'"
WARM_UP_SECONDS = 3.0


@dataclass(frozen=True)
class Window:
    paid: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.paid / self.seconds

    @property
    def cpu_ms_each(self) -> float:
        return 1000 * self.cpu_seconds / max(self.paid, 1)


def window(settings, env: dict, width: int, seconds: float) -> Window:
    """One relay process at ``width`` payouts at once, timed for ``seconds`` after its warm-up."""
    relay = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "relay"], cwd=runner.ROOT, env={**env, "PAYOUTS_AT_ONCE": str(width)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(WARM_UP_SECONDS)
        paid_before, started, cpu_before = asyncio.run(runner.scalar(settings.database_url, PAID)), time.monotonic(), processes.cpu_seconds(relay.pid)
        time.sleep(seconds)
        if relay.poll() is not None:
            raise SystemExit(f"the relay died during the window (exit {relay.returncode})")
        paid_after, ended, cpu_after = asyncio.run(runner.scalar(settings.database_url, PAID)), time.monotonic(), processes.cpu_seconds(relay.pid)
    finally:
        processes.stop(relay)
    if relay.returncode not in (0, -2):  # stopped by its Ctrl-C, not killed for hanging
        raise SystemExit(f"the relay exited with {relay.returncode}")
    return Window(paid_after - paid_before, ended - started, cpu_after - cpu_before)


async def audit(settings, wechat_url: str):
    """The faults drill's exactly-once check of payments, by WeChat Pay's own ledger, over the
    rewards the relay reached (those still due wait for a later run)."""
    import httpx

    from bench.faults_drill import payments_check
    from bench.run import app_stores
    from marketing.models import Campaign, Payout, Reward

    async with app_stores(settings):
        rewards = await Reward.exclude(status="due").values("id", "kind", "status", "amount_fen")
        still_due = await Reward.filter(status="due").count()
        payouts = await Payout.all().values("reward_id", "bill_no", "status", "channel")
        campaigns = await Campaign.all().values("id", "budget_fen", "committed_fen")
    async with httpx.AsyncClient(base_url=wechat_url, timeout=60) as http:
        packets = (await http.get("__fake__/pay/ledger")).raise_for_status().json()
    return payments_check(rewards, payouts, packets, [], campaigns), still_due


def bench_payouts(args, settings, env: dict, wechat_url: str) -> None:
    """The relay's windows, one at a time and side by side (the settings' default) taken
    alternately; writes the section."""
    windows: dict[int, list[Window]] = {1: [], settings.payouts_at_once: []}
    for _ in range(args.runs):
        for width in windows:
            windows[width].append(window(settings, env, width, args.duration))
    checked, still_due = asyncio.run(audit(settings, wechat_url))
    base = statistics.median(w.per_second for w in windows[1])
    rows = []
    for width, taken in windows.items():
        rate = statistics.median(w.per_second for w in taken)
        cpu = statistics.median(w.cpu_ms_each for w in taken)
        busy = statistics.median(w.cpu_seconds / w.seconds for w in taken)
        label = "one at a time (`PAYOUTS_AT_ONCE=1`)" if width == 1 else f"{width} at once (`PAYOUTS_AT_ONCE={width}`, the default)"
        rows.append(f"| {label} | {rate:,.1f} | {rate / base:.2f}× | {cpu:.2f} | {busy:.2f} |")
    newline = "\n"
    body = f"""## Marketing: paying the grab's winners (the outbox relay)

Measured right after the grab, on its backlog of due payouts: one `server.cli relay` process
paying through wechatpy against the fake WeChat Pay (its own process on this machine), {args.duration} s per
window after a {WARM_UP_SECONDS:.0f} s start, median of {args.runs} windows each, taken alternately. Command: as the grab's.

| relay | payouts/s | vs one at a time | relay CPU ms a payout | relay cores busy |
| --- | ---: | ---: | ---: | ---: |
{newline.join(rows)}

Afterwards, the faults drill's check of every reward the relay reached against WeChat Pay's ledger
({still_due:,} rewards still due are left out):
{newline.join(f"- {figure}" for figure in checked.figures)}
- **{'PASS' if checked.passed else 'FAIL'}**: every payout exactly once.
"""
    runner.write_section("payouts", body)
    print(body)
    if not checked.passed:
        raise SystemExit("a payout check failed: see the section")
