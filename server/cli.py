"""Entry points: ``python -m server.cli <command>``.

  migrate   apply pending database migrations
  demo      load the demo data (idempotent)
  serve     serve the API (one worker by default; WORKERS=n for more, PostgreSQL only)
  relay     run the outbox relay as its own worker process
  simulate  run a product definition (and a challenger) over a CSV of applicant profiles
  daily     the loans' daily job for a business date (default: today in Asia/Shanghai), every
            bank or one (--bank CODE); prints a summary. Safe to run twice.
  monitor   real-time monitoring: read the banks' transaction events from the stream (a consumer
            group: run as many as you like) and settle and signal as they arrive
  risk-batch  the post-loan warning batch for a business date (default: today): refreshes the
            loans' facts and the external snapshots, evaluates every rule on every active loan of
            every bank (or --bank CODE), with a progress bar; prints a summary. Safe to run twice.
  reconcile-payouts  match a day's red-packet payouts with WeChat Pay's records (default:
            yesterday in Asia/Shanghai); prints the differences, exits 3 when there are any
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from pathlib import Path

from infra.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="server.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate")
    sub.add_parser("demo")
    serve = sub.add_parser("serve")
    serve.add_argument("--workers", type=int, default=1)
    sub.add_parser("relay")
    simulate = sub.add_parser("simulate")
    simulate.add_argument("champion", type=Path, help="a product definition file, e.g. lending_core/products/catalogue/SHUIYITONG.toml")
    simulate.add_argument("--challenger", type=Path, help="another definition to compare with")
    simulate.add_argument("--csv", type=Path, default=None, help="applicant profiles (default: the shipped sample)")
    simulate.add_argument("--bank", default="HZRCB", help="the bank whose own data the sandbox answers for")
    daily = sub.add_parser("daily")
    daily.add_argument("--date", type=_business_date, default=None, help="YYYY-MM-DD (default: today in Asia/Shanghai)")
    daily.add_argument("--bank", action="append", default=None, help="a bank code (repeatable; default: every active bank)")
    daily.add_argument("--worker", default=None, help="this worker's name in the run records (default: host:pid)")
    monitor = sub.add_parser("monitor")
    monitor.add_argument("--consumer", default=None, help="this worker's name in the consumer group (default: host:pid)")
    monitor.add_argument("--batch", type=int, default=500, help="events read and processed per transaction")
    risk_batch = sub.add_parser("risk-batch")
    risk_batch.add_argument("--date", type=_business_date, default=None, help="YYYY-MM-DD (default: today in Asia/Shanghai)")
    risk_batch.add_argument("--bank", action="append", default=None, help="a bank code (repeatable; default: every active bank)")
    risk_batch.add_argument("--worker", default=None, help="this worker's name in the run records (default: host:pid)")
    risk_batch.add_argument("--no-refresh", action="store_true", help="evaluate the snapshots as they are (no source is asked)")
    risk_batch.add_argument("--rerun", action="store_true", help="run a finished day again")
    reconcile = sub.add_parser("reconcile-payouts")
    reconcile.add_argument("--date", type=_business_date, default=None, help="YYYY-MM-DD (default: yesterday in Asia/Shanghai)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command == "migrate":
        from server.database import apply_migrations

        asyncio.run(apply_migrations(settings.database_url))
        print("migrations applied", file=sys.stderr)
    elif args.command == "demo":
        if settings.app_env == "production":
            print("refusing to load demo data in production", file=sys.stderr)
            return 2
        print(json.dumps(asyncio.run(_load_demo(settings)), ensure_ascii=False))
    elif args.command == "serve":
        _serve(settings, args.workers)
    elif args.command == "relay":
        asyncio.run(_relay(settings))
    elif args.command == "simulate":
        from infra.errors import DomainError
        from lending_core.products.definition import InvalidDefinition

        try:
            print(asyncio.run(_simulate(settings, args)))
        except (DomainError, InvalidDefinition) as exc:
            # A bad applicant file or definition: say where, without a traceback.
            problems = (getattr(exc, "details", None) or {}).get("problems", []) if isinstance(exc, DomainError) else []
            print(str(exc), *(f"  line {p['line']}: {p['problem']}" for p in problems[1:]), sep="\n", file=sys.stderr)
            return 2
    elif args.command == "daily":
        report = asyncio.run(_daily(settings, args))
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.command == "monitor":
        asyncio.run(_monitor(settings, args))
    elif args.command == "risk-batch":
        report = asyncio.run(_risk_batch(settings, args))
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.command == "reconcile-payouts":
        report = asyncio.run(_reconcile_payouts(settings, args))
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 3 if report["differences"] else 0
    return 0


async def _reconcile_payouts(settings: Settings, args) -> dict:
    from datetime import timedelta

    from infra import clock
    from infra.redis import create_redis
    from marketing import payouts
    from server import database
    from server.app import configure_pii
    from server.providers import build_providers

    configure_pii(settings)
    redis = create_redis(settings)
    providers = build_providers(settings, redis)
    await database.open_database(settings.database_url)
    try:
        day = args.date or clock.business_date() - timedelta(days=1)
        return (await payouts.reconcile(day, providers.wechat_pay)).as_dict()
    finally:
        await database.close_database()
        await redis.aclose()


def _business_date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


async def _daily(settings: Settings, args) -> dict:
    import os
    import socket

    from infra import clock
    from lending_core.loans import daily
    from server import database
    from server.app import configure_pii
    from server.providers import build_providers
    from infra.redis import create_redis

    configure_pii(settings)
    redis = create_redis(settings)
    providers = build_providers(settings, redis)
    await database.open_database(settings.database_url)
    try:
        report = await daily.run(
            args.date or clock.business_date(),
            core_banking=providers.core_banking,
            bank_codes=args.bank,
            worker=args.worker or f"{socket.gethostname()}:{os.getpid()}",
        )
        return report.as_dict()
    finally:
        await database.close_database()
        await redis.aclose()


async def _risk_batch(settings: Settings, args) -> dict:
    import os
    import socket
    import time

    from infra import clock
    from infra.redis import create_redis
    from lending_core.org.models import Bank
    from lending_core.risk import batch, lists, snapshots
    from lending_core.risk.feeds import from_data_sources
    from server import database
    from server.app import configure_pii
    from server.providers import build_providers

    def progress(bank_code: str, done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        print(f"\r{bank_code:<8} [{bar:<30}] {done:>10,}/{total:,} loans", end="" if done < total else "\n", file=sys.stderr, flush=True)

    configure_pii(settings)
    redis = create_redis(settings)
    providers = build_providers(settings, redis)
    await database.open_database(settings.database_url)
    try:
        on = args.date or clock.business_date()
        worker = args.worker or f"{socket.gethostname()}:{os.getpid()}"
        feeds = from_data_sources(providers.data_sources)
        banks = Bank.filter(is_active=True).order_by("id")
        if args.bank:
            banks = banks.filter(code__in=args.bank)
        summary = {"business_date": on.isoformat(), "banks": []}
        for bank in await banks:
            started = time.perf_counter()
            refreshed = None
            if not args.no_refresh:
                await snapshots.refresh_loan_facts(bank.id, on)
                refreshed = (await snapshots.refresh_snapshots(bank.id, feeds)).as_dict()
            result = await batch.run_bank(bank, on, worker=worker, rerun=args.rerun, progress=progress)
            retried = None
            if result.deferred and not args.no_refresh:
                await snapshots.refresh_snapshots(bank.id, feeds, only_failed=True)
                retried = (await batch.retry_deferred(bank, on)).as_dict()
            listed = await lists.apply_automatic(bank.id)
            summary["banks"].append({**result.as_dict(), "refresh": refreshed, "retried_deferred": retried, "list_entries_added": listed,
                                     "total_seconds": round(time.perf_counter() - started, 2)})
        return summary
    finally:
        await database.close_database()
        await redis.aclose()


async def _monitor(settings: Settings, args) -> None:
    import os
    import socket

    from infra.redis import create_redis
    from server import database
    from server.app import configure_pii
    from server.monitor import Monitor, MonitorSettings
    from server.providers import build_providers

    configure_pii(settings)
    redis = create_redis(settings)
    providers = build_providers(settings, redis)
    await database.open_database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Monitor(redis, settings.redis_key_prefix, providers.core_banking, consumer=args.consumer or f"{socket.gethostname()}:{os.getpid()}",
                     settings=MonitorSettings(batch=args.batch))
    tune_garbage_collector()
    try:
        await worker.run(stop)
    finally:
        await database.close_database()
        await redis.aclose()


async def _simulate(settings: Settings, args) -> str:
    from server import simulate
    from server.app import configure_pii
    from server.providers import sandbox_data_sources

    configure_pii(settings)
    # Simulation asks the data sources fresh each time: no cache, no Redis needed.
    sources = sandbox_data_sources(timeout_seconds=settings.data_source_timeout_seconds)
    return await simulate.run(args.champion, args.challenger, args.csv or simulate.SAMPLE, sources, bank_code=args.bank)


async def _load_demo(settings: Settings) -> dict:
    from server import database, demo_data
    from server.app import configure_pii

    configure_pii(settings)
    await database.open_database(settings.database_url)
    try:
        return await demo_data.load()
    finally:
        await database.close_database()


def _serve(settings: Settings, workers: int) -> None:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    if workers > 1 and settings.uses_embedded_database:
        raise SystemExit("more than one worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    fake_wechat = _start_fake_wechat(settings)
    print(
        f"\n  API      http://{settings.host}:{settings.port}/api/v1\n"
        f"  Health   http://{settings.host}:{settings.port}/healthz\n"
        f"  OpenAPI  http://{settings.host}:{settings.port}/docs  (JSON: /docs/openapi.json)\n"
        "  Stop     Ctrl-C\n",
        file=sys.stderr,
    )
    loader = AppLoader(factory=_app_factory)
    app = loader.load()
    try:
        if workers == 1:
            # One process, no worker manager: what the embedded stores need, and simplest to stop.
            app.prepare(host=settings.host, port=settings.port, single_process=True, motd=False)
            Sanic.serve_single(primary=app)
        else:
            app.prepare(host=settings.host, port=settings.port, workers=workers, motd=False)
            Sanic.serve(primary=app, app_loader=loader)
    finally:
        if fake_wechat is not None:
            fake_wechat.terminate()
            fake_wechat.wait(timeout=10)


def _start_fake_wechat(settings: Settings):
    """The demo's WeChat: started beside the API when the settings point at the local fake."""
    import subprocess
    from urllib.parse import urlparse

    target = urlparse(settings.wechat_api_base)
    if settings.app_env == "production" or target.hostname != "127.0.0.1":
        return None
    print(f"  WeChat   fake server on {settings.wechat_api_base} (python -m fakes.wechat)", file=sys.stderr)
    return subprocess.Popen([sys.executable, "-m", "fakes.wechat", "--port", str(target.port or 80)])


def _app_factory():
    from server.app import create_app

    app = create_app()

    @app.after_server_start
    async def after_start(app, loop) -> None:
        tune_garbage_collector()

    return app


def tune_garbage_collector() -> None:
    """For a long-running worker, once started. Everything loaded at start-up (modules, product
    definitions, routes) lives as long as the worker: freezing it keeps the cyclic collector from
    re-scanning it — a full collection over it took ~40 ms, a stall for every request or event in
    flight — and a larger young generation lets short-lived objects die by reference counting
    first. Measured: several percent more quotes a second (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


async def _relay(settings: Settings) -> None:
    from infra.outbox import run_relay
    from infra.redis import create_redis
    from server import database
    from server.app import configure_pii
    from server.handlers import outbox_handlers, relay_policy
    from server.providers import build_providers

    configure_pii(settings)
    redis = create_redis(settings)
    handlers = outbox_handlers(settings, build_providers(settings, redis))
    await database.open_database(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_relay(handlers, stop=stop, policy=relay_policy(settings))
    finally:
        await database.close_database()
        await redis.aclose()


if __name__ == "__main__":
    sys.exit(main())
