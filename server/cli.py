"""Entry points: ``python -m server.cli <command>``.

  migrate   apply pending database migrations
  demo      load the demo data (idempotent)
  serve     serve the API (one worker by default; WORKERS=n for more, PostgreSQL only)
  relay     run the outbox relay as its own worker process
  simulate  run a product definition (and a challenger) over a CSV of applicant profiles
  daily     the loans' daily job for a business date (default: today in Asia/Shanghai), every
            bank or one (--bank CODE); prints a summary. Safe to run twice.
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
        print(asyncio.run(_simulate(settings, args)))
    elif args.command == "daily":
        report = asyncio.run(_daily(settings, args))
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


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
    async def tune_garbage_collector(app, loop) -> None:
        # Everything loaded at start-up (modules, product definitions, routes) lives as long as
        # the worker: freezing it keeps the cyclic collector from re-scanning it, and a larger
        # young generation lets a request's short-lived objects die by reference counting
        # first. Measured: several percent more quotes a second (docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)

    return app


async def _relay(settings: Settings) -> None:
    from infra.outbox import run_relay
    from infra.redis import create_redis
    from server import database
    from server.app import configure_pii
    from server.handlers import outbox_handlers
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
        await run_relay(handlers, stop=stop)
    finally:
        await database.close_database()
        await redis.aclose()


if __name__ == "__main__":
    sys.exit(main())
