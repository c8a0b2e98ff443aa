"""The soak drill (issue 10.6): the mixed workload at half of the measured capacity, for a while.

    python -m bench.soak [--seconds 600] [--warmup 60] [--capacity-seconds 60]     (make soak)

On PostgreSQL ``rcb_soak`` (dropped and recreated) and Redis db 10 (flushed), migrated and
demo-loaded, it runs the platform as it is deployed: the fake WeChat, the API with two worker
processes (``serve --workers 2``, no embedded workers), the outbox relay and the real-time monitor,
each a process of its own. ``bench.workload.prepare`` makes the customers, loans, campaign and
accounts; capacity is the 2xx a second of the mix in a closed loop (64 clients) for
--capacity-seconds; the soak then sends the mix open loop at half of it for --seconds.

Every 5 s it samples the resident memory (VmRSS) of each API worker (the serve process's
children) and of the relay and the monitor. Figures: 5xx (target zero), p99 per route, each
worker's RSS at the end of the warm-up and at the end (target: at most +10 %), the CPU seconds of
each process and of the load generator over the soak. The run writes its section of
docs/reliability.md itself. It stops every process it started, on failure and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import workload
from bench.processes import children, cpu_seconds, rss_kib, sanic_workers, stop
from bench.run import free_port, machine, postgres_env, wait_for, write_drill_section

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/rcb_soak"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
SAMPLE_SECONDS = 5
RSS_GROWTH_TARGET = 0.10
CONCURRENCY = 64


# ---- processes -----------------------------------------------------------------------------------


class Processes:
    """The processes the drill started, stopped in reverse order whatever happens."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], port: int | None = None) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started.append((name, process))
        if port is not None:
            wait_for(port, process, seconds=60)
        return process

    def stop(self) -> None:
        # Their own children (Sanic's workers) too, should a process not stop them itself.
        family = [pid for _, process in self.started for pid in children(process.pid)]
        for name, process in reversed(self.started):
            stop(process, seconds=30)
        for pid in family:
            if Path(f"/proc/{pid}").exists():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.started.clear()


# ---- sampling ------------------------------------------------------------------------------------


@dataclass
class Samples:
    """RSS (KiB) per process name over time, and CPU seconds at the soak's start and end."""

    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)

    def take(self, pids: dict[str, int], at: float) -> None:
        for name, pid in pids.items():
            kib = rss_kib(pid)
            if kib is not None:
                self.rss.setdefault(name, []).append((at, kib))

    def at_or_after(self, name: str, moment: float) -> int | None:
        return next((kib for at, kib in self.rss.get(name, []) if at >= moment), None)

    def every(self, name: str, start: float, step: float) -> list[int]:
        """One sample per ``step`` seconds from ``start`` on, and the last."""
        samples = self.rss.get(name, [])
        picked, due = [], start
        for index, (at, _) in enumerate(samples):
            if at >= due:
                picked.append(index)
                due += step
        if samples and (not picked or picked[-1] != len(samples) - 1):
            picked.append(len(samples) - 1)
        return [samples[index][1] for index in picked]

    def last(self, name: str) -> int | None:
        return self.rss[name][-1][1] if self.rss.get(name) else None


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: seconds for name, pid in pids.items() if (seconds := cpu_seconds(pid)) is not None}


async def sample_until(done: asyncio.Event, pids: dict[str, int], samples: Samples, begun: float) -> None:
    while True:
        samples.take(pids, time.monotonic() - begun)
        try:
            await asyncio.wait_for(done.wait(), SAMPLE_SECONDS)
            samples.take(pids, time.monotonic() - begun)
            return
        except asyncio.TimeoutError:
            pass


# ---- the drill -----------------------------------------------------------------------------------


@dataclass
class Result:
    capacity_per_second: float
    capacity_figures: list
    rate: float
    soak_figures: list  # after the warm-up
    all_figures: list
    late_starts: int
    started: int
    samples: Samples
    warmup: float
    seconds: float
    generator_cpu: float
    refusals: dict
    process_names: list[str]
    prepare_seconds: float


def soak(args, env: dict, logs: Path) -> Result:
    api_port, wechat_port = free_port(), free_port()
    env.update(APP_ENV="dev", RUN_EMBEDDED_WORKERS="false", PORT=str(api_port), HOST="127.0.0.1",
               WECHAT_API_BASE=f"http://127.0.0.1:{wechat_port}/", NOTARY_DIR=str(logs / "notary"), LOG_LEVEL="WARNING",
               **workload_limits())
    from server.database import recreate_postgres_database

    asyncio.run(recreate_postgres_database(env["DATABASE_URL"]))
    subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=True, capture_output=True)
    for step in ("migrate", "demo"):
        subprocess.run([sys.executable, "-m", "server.cli", step], cwd=ROOT, env=env, check=True, capture_output=True)

    processes = Processes(env, logs)
    try:
        processes.start("wechat", ["-m", "fakes.wechat", "--port", str(wechat_port)], wechat_port)
        serve = processes.start("api", ["-m", "server.cli", "serve", "--workers", "2"], api_port)
        relay = processes.start("relay", ["-m", "server.cli", "relay"])
        monitor = processes.start("monitor", ["-m", "server.cli", "monitor"])
        base_url = f"http://127.0.0.1:{api_port}"
        from bench.grab import ready

        ready(base_url)
        began = time.monotonic()
        world = workload.prepare(dict(env), base_url, seed=args.seed)
        prepare_seconds = time.monotonic() - began
        workers = sanic_workers(serve.pid)
        if len(workers) != 2:
            raise SystemExit(f"expected 2 API workers under the serve process, found {workers}")
        pids = {**{f"API worker {n + 1}": pid for n, pid in enumerate(workers)}, "relay": relay.pid, "monitor": monitor.pid}

        capacity = workload.Stats()
        asyncio.run(workload.drive(world, capacity, seconds=args.capacity_seconds, concurrency=CONCURRENCY, seed=args.seed))
        capacity_per_second = capacity.ok_total() / args.capacity_seconds
        rate = capacity_per_second / 2

        stats, samples = workload.Stats(), Samples()
        warm = {}

        async def run_soak() -> float:
            done = asyncio.Event()
            begun = time.monotonic()
            sampler = asyncio.create_task(sample_until(done, pids, samples, begun))

            async def mark_after_warmup() -> None:
                await asyncio.sleep(args.warmup)
                warm.update(stats.mark())

            marker = asyncio.create_task(mark_after_warmup())
            generator = time.process_time()
            samples.cpu_start = cpu_of(pids)
            await workload.drive(world, stats, seconds=args.seconds, rate=rate, concurrency=CONCURRENCY, seed=args.seed + 1)
            samples.cpu_end = cpu_of(pids)
            done.set()
            await asyncio.gather(sampler, marker)
            return time.process_time() - generator

        generator_cpu = asyncio.run(run_soak())
        for name, process in processes.started:
            if process.poll() is not None:
                raise SystemExit(f"the {name} process exited during the soak (see {logs / (name + '.log')})")
        return Result(capacity_per_second, capacity.figures(), rate, stats.since(warm), stats.figures(), stats.late_starts, stats.started,
                      samples, args.warmup, args.seconds, generator_cpu, stats.refusals, list(pids), prepare_seconds)
    finally:
        processes.stop()


def workload_limits() -> dict:
    from bench.grab import UNLIMITED

    return dict(UNLIMITED)


# ---- the report ----------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def report(result: Result, command: str) -> str:
    server_errors = sum(f.server_errors for f in result.all_figures)
    no_answer = sum(f.no_answer for f in result.all_figures)
    routes = "\n".join(
        f"| `{f.route}` | {f.requests:,} | {f.ok:,} | {f.client_errors:,} | {f.server_errors:,} | {f.no_answer:,} | {f.p50_ms:.1f} | {f.p99_ms:.1f} |"
        for f in result.soak_figures
    )
    rss_rows, growths = [], []
    for name in result.process_names:
        start, end = result.samples.at_or_after(name, result.warmup), result.samples.last(name)
        cpu = result.samples.cpu_end.get(name, 0.0) - result.samples.cpu_start.get(name, 0.0)
        if start is None or end is None:
            rss_rows.append(f"| {name} | – | – | – | {cpu:.1f} | no sample |")
            continue
        growth = (end - start) / start
        target = ""
        if name.startswith("API worker"):
            growths.append(growth)
            target = f"≤ +{RSS_GROWTH_TARGET:.0%}: {met(growth <= RSS_GROWTH_TARGET)}"
        rss_rows.append(f"| {name} | {start / 1024:.1f} | {end / 1024:.1f} | {growth:+.1%} | {cpu:.1f} | {target} |")
    total_ok = sum(f.ok for f in result.all_figures)
    refusals = ", ".join(f"`{route}` {status} {code} ×{count}" for (route, status, code), count in sorted(result.refusals.items())) or "none"
    newline = "\n"
    return f"""## Soak (issue 10.6)

Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; PostgreSQL and Redis on this machine.
Command: `{command}`. The API ran as 2 worker
processes (`serve --workers 2`), the outbox relay, the real-time monitor and the fake WeChat each as
a process of its own; the load generator (Python, httpx, one process) shares the same 2 cores. What
the mix does is in `bench/workload.py` (shares: {", ".join(f"{a} {s:.0%}" for a, s in sorted(workload.MIX.items()))}).

| figure | value | target | |
| --- | --- | --- | --- |
| capacity (closed loop, {CONCURRENCY} clients, 2xx/s over {sum(f.requests for f in result.capacity_figures):,} requests; 4xx {sum(f.client_errors for f in result.capacity_figures):,}, 5xx {sum(f.server_errors for f in result.capacity_figures):,}, no answer {sum(f.no_answer for f in result.capacity_figures):,}) | {result.capacity_per_second:,.1f} | – | measured |
| soak rate (open loop) | {result.rate:,.1f}/s for {result.seconds:.0f} s ({result.started:,} requests, {result.late_starts:,} started late) | half of capacity | – |
| 5xx over the whole soak | {server_errors:,} | 0 | {met(server_errors == 0)} |
| no answer over the whole soak | {no_answer:,} | 0 | {met(no_answer == 0)} |
| API worker RSS growth, end of warm-up ({result.warmup:.0f} s) to end | {", ".join(f"{g:+.1%}" for g in growths) or "–"} | ≤ +{RSS_GROWTH_TARGET:.0%} each | {met(bool(growths) and all(g <= RSS_GROWTH_TARGET for g in growths))} |

Per route, after the warm-up (p50/p99 in ms, from the request's start to its answer):

| route | requests | 2xx | 4xx | 5xx | no answer | p50 | p99 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{routes}

Memory (VmRSS, MiB, sampled every {SAMPLE_SECONDS} s) and CPU seconds over the soak:

| process | RSS end of warm-up | RSS end | growth | CPU s | target |
| --- | ---: | ---: | ---: | ---: | --- |
{newline.join(rss_rows)}
| load generator | – | – | – | {result.generator_cpu:.1f} | |

RSS (MiB) over the soak, one sample a minute from the end of the warm-up:

{newline.join(f"- {name}: " + " → ".join(f"{kib / 1024:.0f}" for kib in result.samples.every(name, result.warmup, 60)) for name in result.process_names)}

Refusals over the whole soak (route, status, code): {refusals}. {total_ok:,} requests answered 2xx;
set-up (customers, campaign, {workload.BOOK_LOANS:,}-loan book, loans through the API) took {result.prepare_seconds:.0f} s.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--capacity-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-doc", action="store_true", help="print the figures without writing docs/reliability.md")
    args = parser.parse_args()
    env = postgres_env(DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, "the soak's measurements")
    logs = ROOT / "var" / "soak"
    logs.mkdir(parents=True, exist_ok=True)
    result = soak(args, env, logs)
    command = "make soak" if sys.argv[1:] == [] else "python -m bench.soak " + " ".join(sys.argv[1:])
    text = report(result, command)
    print(text)
    if not args.no_doc:
        write_drill_section("soak", text)


if __name__ == "__main__":
    main()
