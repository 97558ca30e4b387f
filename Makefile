# The two commands of the README: `make run` and `make test`. Both install what they need first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

# The machine's podman wrapper lives in ../shared; a clone elsewhere finds it beside its origin.
SHARED ?= $(firstword $(wildcard ../shared) $(wildcard $(shell git config --get remote.origin.url 2>/dev/null)/../shared) ../shared)
PODMAN ?= $(SHARED)/tools/podman

.PHONY: install run test test-e2e lint typecheck migrations-check browser kubectl container-test bench faults flood clean

# Exactly the locked versions, each checked against its hash; then the project itself, without deps.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## Re-resolve the locks after a change to pyproject.toml; pins that still fit are kept. Upgrades:
## LOCK_ARGS=--upgrade (all) or LOCK_ARGS='--upgrade-package httpx'. The runtime lock is the dev
## lock's subset, so the image runs the versions the tests ran.
LOCK_ARGS ?=
LOCK_FLAGS = --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command 'make lock' $(LOCK_ARGS)
.PHONY: lock
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml -c requirements-dev.lock $(LOCK_FLAGS) -o requirements.lock

## The service on the embedded SQLite database with both sandboxes, worker in-process.
run: install
	$(BIN)/rankr-ghl-sync migrate
	$(BIN)/rankr-ghl-sync serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict app

## Models and migrations never drift, on either database: upgrade a scratch SQLite file and a
## throw-away schema in the local Postgres (dropped again, pass or fail), then `alembic check` each.
TEST_POSTGRES_URL ?= postgresql://root@127.0.0.1:5432/test
migrations-check: install
	@rm -f .migrations-check.db
	DATABASE_URL=sqlite:///.migrations-check.db $(BIN)/alembic upgrade head
	DATABASE_URL=sqlite:///.migrations-check.db $(BIN)/alembic check
	@rm -f .migrations-check.db
	@schema=migrations_check_$$$$; url="$(TEST_POSTGRES_URL)?options=-csearch_path%3D$$schema"; \
	  psql "$(TEST_POSTGRES_URL)" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $$schema" || exit 1; \
	  trap 'psql "$(TEST_POSTGRES_URL)" -X -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $$schema CASCADE"' EXIT; \
	  echo "alembic upgrade head && alembic check on Postgres (schema $$schema)"; \
	  DATABASE_URL="$$url" $(BIN)/alembic upgrade head && DATABASE_URL="$$url" $(BIN)/alembic check

## The headless browser the status page is tested in (Debian's chromium, driven through chromium-driver).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

## kubectl, whose `kubectl kustomize` renders deploy/kubernetes for tests/deploy (Debian's kubernetes-client).
kubectl:
	@command -v kubectl >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null)

## Lint, types, migrations, and the fast suite: unit and in-process tests (no ports, processes or
## browser). Exit 5 is pytest's "nothing selected".
test: lint typecheck migrations-check kubectl
	$(BIN)/pytest -m 'not e2e' || [ $$? -eq 5 ]

## The end-to-end tests (marker e2e): the service on loopback ports, worker processes killed, Postgres
## concurrency, the status page in a real browser.
test-e2e: install browser
	$(BIN)/pytest -m e2e || [ $$? -eq 5 ]

## The image as users run it: build, lint (hadolint, compose schema), size, migrate + serve + a round trip.
container-test: install
	$(PODMAN) build --format docker -t rankr-ghl-sync .
	CONTAINER_TESTS=1 $(BIN)/pytest -p no:cacheprovider -s tests/container

## Every benchmark (intake, upstream calls, CPU per change, rate-budget use, latency, memory, backfill),
## each next to a baseline measured in the same run, written to docs/benchmarks.md. BENCH_ARGS='--quick'
## for a smoke test, '--only rate latency' for some parts (see python -m bench.run --help). Needs wrk and
## Postgres; py-spy (in the dev lock) profiles the CPU part.
BENCH_ARGS ?=
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## A bad day, bounded (10 min at most, loopback only): thousands of changes both ways through the
## sandboxes with 5xx, 429 storms, timeouts, dropped/reordered/duplicate webhooks and SIGKILLed
## workers; then both sides compared record by record. Fails unless lost = duplicate = 0.
faults: install
	$(BIN)/python -m bench.faults.run --database postgres

## The database away (about a minute, loopback only): a Postgres of the run's own, stopped for 15 s
## under 20 signed webhooks a second and started again. Fails if an acknowledged webhook is lost, an
## answer is a 500 or a refusal lacks Retry-After, the service logs more than 60 lines while the
## database is away, or the backlog takes more than 10 s to settle after it is back.
.PHONY: outage
outage: install
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)
	$(BIN)/python -m bench.outage.run

## Memory under a flood of oversized unauthenticated requests (20 s, loopback only): 100 MB bodies
## to /admin/replay without a token, 16-32 MB heads, 2 MB webhook bodies. Fails if serve's RSS grows
## more than 50 MB over idle or anything answers 5xx. FLOOD_ARGS='--seconds 5' for a quick one.
FLOOD_ARGS ?=
flood: install
	$(BIN)/python -m bench.flood $(FLOOD_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache rankr_ghl_sync.db*
