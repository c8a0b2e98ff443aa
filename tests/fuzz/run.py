"""API fuzzing (issue 10, item 1): schemathesis against the OpenAPI document of a live backend.

``python -m tests.fuzz.run`` (``make fuzz``) starts the backend as `make run` does (migrate, demo,
serve) on a store of its own — a temporary SQLite file, or on PostgreSQL the suite's database
name with ``_fuzz`` appended and on Redis a key prefix of its own — signs in a customer (WeChat
login, bank, phone, real name, consents and one application, so small ids name real objects)
and members of staff, and runs ``st run`` with every operation sent under the token of the role
that may call it. Checks: no 5xx, every response matches its documented schema, and every
refusal has the standard error shape (tests/fuzz/checks.py). Exit status: schemathesis's.

Not part of `make test` (its files are not ``test_*.py``): it is a CI step of its own with a
time budget (about 10 minutes on the 2-core CI machine; FUZZ_MAX_EXAMPLES, FUZZ_WORKERS tune it).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx

from infra.identity_numbers import make_test_id_number
from tests.live import ROOT, LiveBackend, running_backend

REPORTS = ROOT / "var" / "fuzz"
CHECKS = ["not_a_server_error", "response_schema_conformance", "standard_error_shape"]
PRODUCT = "SHUIYITONG"

# Which member of staff sends an admin operation: one whose role may call it, so the request gets
# past the permission check (first match wins; hz.admin, a bank admin, may do most things).
STAFF_BY_PATH = [
    (r"^/api/v1/admin/(applications|review-queue)", "hz.reviewer"),
    (r"^/api/v1/admin/risk/batch-runs", "hz.admin"),
    (r"^/api/v1/admin/risk/", "hz.risk"),
    (r"^/api/v1/admin/customers/[^/]+/unmask", "hz.risk"),
    (r"^/api/v1/(admin|staff)/", "hz.admin"),
]


def staff_for(path: str) -> str | None:
    """The staff username for ``path``, or None for a customer's (or anybody's) operation."""
    return next((username for pattern, username in STAFF_BY_PATH if re.match(pattern, path)), None)


def customer_token(live: LiveBackend) -> str:
    """A verified HZRCB customer with the consents SHUIYITONG asks for and one application."""
    customer = live.customer(
        name="符晓测", id_number=make_test_id_number("330102", date(1988, 8, 8), 123), phone="13988880123", bank_code="HZRCB"
    )
    customer.apply(PRODUCT)
    return customer.token


def config(paths: list[str], staff_env: dict[str, str]) -> str:
    """schemathesis.toml: the customer's token by default, a staff token on the admin paths.
    Tokens stay in the environment (``${VAR}``), not in the file."""
    lines = [
        'headers = { Authorization = "Bearer ${FUZZ_CUSTOMER_TOKEN}" }',
        f'cache = {{ directory = "{REPORTS / "cache"}" }}',  # crashes kept for `st replay`, under var/
        "",
    ]
    by_staff: dict[str, list[str]] = {}
    for path in paths:
        if username := staff_for(path):
            by_staff.setdefault(username, []).append(path)
    for username, its_paths in sorted(by_staff.items()):
        variable = staff_env[username]
        lines += [
            "[[operations]]",
            "include-path = [" + ", ".join(f'"{p}"' for p in its_paths) + "]",
            f'headers = {{ Authorization = "Bearer ${{{variable}}}" }}',
            "",
        ]
    return "\n".join(lines)


def fuzz(live: LiveBackend, tmp: Path, args) -> int:
    """One schemathesis run over every operation; its exit status."""
    paths = list(live.http.get("/docs/openapi.json").raise_for_status().json()["paths"])
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.fuzz.checks", FUZZ_CUSTOMER_TOKEN=customer_token(live))
    staff_env = {}
    for username in sorted({staff_for(p) for p in paths} - {None}):
        staff_env[username] = "FUZZ_STAFF_" + re.sub(r"\W", "_", username).upper()
        env[staff_env[username]] = live.token(username)
    config_file = tmp / "schemathesis.toml"
    config_file.write_text(config(paths, staff_env))
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(config_file), "run", f"{live.base_url}/docs/openapi.json",
        "--checks", ",".join(CHECKS), "--max-examples", str(args.max_examples), "--workers", str(args.workers),
        "--seed", str(args.seed), "--no-color", "--suppress-health-check", "all", "--request-timeout", "30",
        "--report", "junit,ndjson", "--report-dir", str(REPORTS),
    ]
    if args.include_path_regex:
        command += ["--include-path-regex", args.include_path_regex]
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT, env=env).returncode
    print(f"fuzz: {len(paths)} paths, max {args.max_examples} examples per operation, {args.workers} workers, "
          f"{time.monotonic() - started:.0f} s; reports in {REPORTS.relative_to(ROOT)}; backend log kept as {REPORTS.relative_to(ROOT)}/backend.log")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", 50)))
    parser.add_argument("--workers", default=os.environ.get("FUZZ_WORKERS", "2"))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 20261130)))
    parser.add_argument("--include-path-regex", default=None, help="fuzz only these operations (a quick re-run)")
    args = parser.parse_args(argv)

    REPORTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        # The sessions must outlast the run (15 minutes by default).
        with running_backend(tmp, "fuzz", ACCESS_TOKEN_TTL_SECONDS="7200") as live:
            live.http.timeout = httpx.Timeout(120)  # the CI machine may be busy: slow is not what this run judges
            try:
                status = fuzz(live, tmp, args)
            finally:
                (REPORTS / "backend.log").write_bytes(live.log_path.read_bytes())
    return status


if __name__ == "__main__":
    sys.exit(main())
