# Two commands: `make run` (demo service on embedded defaults) and `make test` (the whole suite).
# Both set up .venv from pyproject.toml first; nothing needs installing by hand beyond Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup migrate demo relay daily risk-batch bench clean miniprogram-test fuzz abuse-drill faults-drill soak scale-out

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The abuse drill (issue 10.5): a reward farm beside ordinary users, through the real controls, on
# PostgreSQL (DATABASE_URL, default rcb_abuse) and Redis (REDIS_URL, default db 8). A few minutes;
# writes its section of docs/reliability.md.
abuse-drill: setup
	$(PY) -m bench.abuse_drill

# The faults drill (issue 10.4): kill -9 the API worker, relay and stream consumer, stop Redis and drop the database's
# connections during a mixed workload (rcb_faults, a Redis of its own); checks nothing lost or doubled. ~6 min.
faults-drill: setup
	$(PY) -m bench.faults_drill

# The soak drill (issue 10.6): the mixed workload at half of its measured capacity for 10 min, API on 2 workers,
# relay and monitor apart, on PostgreSQL rcb_soak and Redis db 10; writes its section of docs/reliability.md.
soak: setup
	$(PY) -m bench.soak

# The scale-out drill (issue 10.7): grab and credit-decision throughput with the API on 1 and on 2
# workers, relay and stream consumer apart, CPU by process; PostgreSQL rcb_scale, Redis db 13. ~10 min.
scale-out: setup
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.scale_out

migrate: setup
	$(PY) -m server.cli migrate

demo: migrate
	$(PY) -m server.cli demo

run: demo
	$(PY) -m server.cli serve

relay: setup
	$(PY) -m server.cli relay

# The loans' daily job for today (DATE=YYYY-MM-DD for another day, BANK=CODE for one bank).
daily: setup
	$(PY) -m server.cli daily $(if $(DATE),--date $(DATE)) $(if $(BANK),--bank $(BANK))

# The post-loan warning batch for today (DATE=YYYY-MM-DD for another day, BANK=CODE for one bank).
risk-batch: setup
	$(PY) -m server.cli risk-batch $(if $(DATE),--date $(DATE)) $(if $(BANK),--bank $(BANK))

test: setup miniprogram-test
	@command -v chromium >/dev/null || echo "NOTE: Chromium is not installed, so the staff console's browser tests (tests/console) are skipped; install it with: apt-get install -y chromium fonts-wqy-microhei"
	$(PY) -m pytest

# The customer's mini-program (miniprogram-stub/): its page tests (no backend), then its
# end-to-end journey against a backend it starts itself (.venv's Python, temporary SQLite).
miniprogram-test: setup
	cd miniprogram-stub && npm ci --no-audit --no-fund && npm test && npm run test:e2e

# schemathesis against the OpenAPI document of a live backend (customer and staff tokens): no 5xx,
# responses as documented, standard error shape. Not part of `make test`; about 10 min in CI.
fuzz: setup
	$(PY) -m tests.fuzz.run

clean:
	rm -rf var .pytest_cache

bench: setup
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run
