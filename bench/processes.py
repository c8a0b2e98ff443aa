"""What the drills read from /proc about the processes they start, and how they stop them."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which is in parentheses and may
    hold spaces): [0] is the state, [1] the parent, [11] and [12] user and system ticks, [19] the
    start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """The live children of ``pid`` (a killed one is a zombie until its parent reaps it: not live)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def sanic_workers(serve_pid: int) -> list[int]:
    """The live Sanic server workers of a ``serve --workers N`` process: the children Sanic named
    in their environment (not its multiprocessing manager, nor the fake WeChat serve may start)."""
    workers = []
    for pid in children(serve_pid):
        try:
            if b"SANIC_WORKER_NAME=Sanic-Server-" in Path(f"/proc/{pid}/environ").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers


def cpu_seconds(pid: int) -> float | None:
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else None


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def stop(process: subprocess.Popen, *, seconds: float = 20) -> None:
    """Ctrl-C, as an operator stops it (Sanic's manager stops its workers on SIGINT, the relay and
    the monitor finish their batch); killed if it is still there after ``seconds``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=seconds)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()
