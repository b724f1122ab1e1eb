# directmail — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
# uv from PATH if it runs (a pyenv shim can name a uv that another Python version holds), else the one
# `make setup` installs with pip (run as a module: pip puts its script in different places for root, users
# and pyenv, and a PATH looked up before the install would miss it).
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo python3 -m uv)
RUN := $(UV) run --frozen
PROFILES ?= 2000
TARGET ?= duckdb
# `--target T` for directmail and dbt, except on the default target (the profile's own).
TARGET_OPTION := $(if $(filter-out duckdb,$(TARGET)),--target $(TARGET),)
# TARGET=postgres with no PGHOST: a throwaway PostgreSQL 15 on 127.0.0.1 (scripts/local-postgres) that
# stays up after the demo; `make local-postgres-stop` removes it.
ifeq ($(TARGET)$(PGHOST),postgres)
export PGHOST := 127.0.0.1
export PGPORT ?= 54329
export PGUSER := postgres
export PGDATABASE := directmail
LOCAL_POSTGRES := local-postgres
endif
# TARGET=spark: the local Spark (profiles.yml's `spark` target) listens on the loopback interface only.
ifeq ($(TARGET),spark)
export SPARK_LOCAL_IP ?= 127.0.0.1
LOCAL_SPARK := java
endif
BENCH_SIZES ?= 100000
ENGINE_PROFILES ?= 100000
BENCH_ENGINES ?= postgres
# Optional extras of pyproject.toml to install besides the default environment (`make setup EXTRAS=spark`);
# TARGET=spark needs pyspark, so it adds `spark`. Installs are inexact: an extra once installed stays.
EXTRAS ?=
SYNC_EXTRAS := $(foreach extra,$(sort $(EXTRAS) $(filter spark,$(TARGET))),--extra $(extra))
# Profiles of the day-2 run (bench/day2.py): 1000000 for the issue's size.
BENCH_DAY2_PROFILES ?= 100000
# `make soak` (tests/test_invariant_sequences.py): minutes, steps per sequence, the first seed (plain
# pytest runs seeds from 0), and how many return files of 150,000-300,000 rows it may ingest.
SOAK_MINUTES ?= 30
SOAK_STEPS ?= 60
SOAK_SEED ?= 1000
SOAK_LARGE_RETURNS ?= 10

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

.PHONY: setup test-servers java sample demo test soak bench lint format docs clean ui serve local-postgres local-postgres-stop

setup:  ## Python environment from uv.lock (bytecode compiled: PYTHONDONTWRITEBYTECODE=1 is common)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --inexact --compile-bytecode $(SYNC_EXTRAS)

test-servers:  ## What the tests start: sshd + gpg + PostgreSQL 15 + Java 17 for Spark (Debian packages, needs root) and Azurite (npm)
	@if [ ! -x /usr/sbin/sshd ] || ! command -v gpg >/dev/null || ! command -v ssh-keygen >/dev/null; then \
		echo "installing openssh-server and gnupg"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server gnupg >/dev/null; \
	fi
	@if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
		echo "installing postgresql-15"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	fi
	@$(MAKE) --no-print-directory java
	@mkdir -p /run/sshd 2>/dev/null || true
	@test -f node_modules/azurite/dist/src/blob/main.js || npm ci --no-audit --no-fund --loglevel=error

java:  ## Java 17, which Spark runs on (Debian's openjdk-17-jre-headless, when no java is on the PATH)
	@if ! command -v java >/dev/null; then \
		echo "installing openjdk-17-jre-headless (Spark)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	fi

sample: setup $(LOCAL_POSTGRES) $(LOCAL_SPARK)  ## (Re)generate the sample CRM into warehouse/directmail.duckdb (TARGET=postgres: the PG* database; TARGET=spark: warehouse/spark), with a new history: the demo's landing/ folder and the landing journals go too
	@# A new history beside the drops of an old one would stop every run under the same names (I1).
	rm -rf landing warehouse/*.directmail-journal .directmail/warehouse-*.directmail-journal
ifeq ($(TARGET),duckdb)
	$(RUN) python -m sampledata.generate --database warehouse/directmail.duckdb --profiles $(PROFILES)
else
	$(RUN) python -m sampledata.generate --target $(TARGET) --profiles $(PROFILES)
	$(RUN) dbt seed --target $(TARGET) --profiles-dir . --quiet
endif

# The demo's runs are scheduled slots of each campaign (Monday 06:00 Paris; the 1st, 07:30 London), so the
# README's quick start, run after it, names the same run ids.
DEMO_WINTER_SLOT := 2026-11-30T05:00:00Z
DEMO_LAPSED_SLOT := 2026-12-01T07:30:00Z

demo: sample  ## Sample warehouse → both sample campaigns → files in landing/ → report → a proof (TARGET=postgres: the PG* database; TARGET=spark: a local Spark)
	$(RUN) directmail $(TARGET_OPTION) validate
	$(RUN) directmail $(TARGET_OPTION) run winter_catalog --run-time $(DEMO_WINTER_SLOT)
	$(RUN) directmail $(TARGET_OPTION) run lapsed_postcard --run-time $(DEMO_LAPSED_SLOT)
	$(RUN) directmail $(TARGET_OPTION) list
	$(RUN) directmail $(TARGET_OPTION) report lapsed_postcard
	@echo; echo "A proof of lapsed_postcard for the test personas (seeds/test_profiles.csv):"
	$(RUN) directmail $(TARGET_OPTION) preview lapsed_postcard --test-profiles
	$(RUN) dbt build --select +campaign_exclusions --profiles-dir . $(TARGET_OPTION) --quiet
	@echo; echo "Files delivered to landing/:"; find landing -type f | sort

test: setup test-servers  ## The whole test suite (starts and stops its own servers)
	$(RUN) pytest -q

soak: setup test-servers  ## Randomized sequences of runs, kills, mail-house actions and return files, every invariant checked after each step, for SOAK_MINUTES (30)
	DIRECTMAIL_SOAK_MINUTES=$(SOAK_MINUTES) DIRECTMAIL_SOAK_EXAMPLES=1000000 DIRECTMAIL_SOAK_STEPS=$(SOAK_STEPS) \
		DIRECTMAIL_SOAK_SEED=$(SOAK_SEED) DIRECTMAIL_SOAK_LARGE_RETURNS=$(SOAK_LARGE_RETURNS) \
		$(RUN) pytest -q -s tests/test_invariant_sequences.py

bench: setup test-servers  ## Extract vs the COPY floor and pandas (BENCH_SIZES=1000000,3000000,10000000 for all); start-up; a day-2 run with its build (BENCH_DAY2_PROFILES)
	$(RUN) python -m bench.extract --sizes $(BENCH_SIZES) --sftp
	$(RUN) python -m bench.startup --profiles $(PROFILES)
	$(RUN) python -m bench.engines --profiles $(ENGINE_PROFILES) --engines $(BENCH_ENGINES)
	$(RUN) python -m bench.day2 --profiles $(BENCH_DAY2_PROFILES) --changed 0.01

local-postgres: test-servers  ## A throwaway PostgreSQL 15 on 127.0.0.1:54329 (what TARGET=postgres uses without PGHOST)
	@bash scripts/local-postgres start
	@echo "to reach it: export PGHOST=127.0.0.1 PGPORT=$${PGPORT:-54329} PGUSER=postgres PGDATABASE=directmail"

local-postgres-stop:  ## Stop and remove the throwaway PostgreSQL
	@bash scripts/local-postgres stop

warehouse/directmail.duckdb:
	$(MAKE) sample

lint: setup warehouse/directmail.duckdb  ## ruff and mypy (Python), sqlfluff with the dbt templater (SQL)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) sqlfluff lint models data-tests

format: setup
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

docs: setup warehouse/directmail.duckdb  ## dbt docs (lineage: sources → staging → intermediate → campaigns)
	$(RUN) dbt docs generate --profiles-dir .
	@echo "Open target/index.html, or: $(RUN) dbt docs serve --profiles-dir ."

clean:
	rm -rf landing .directmail target logs warehouse .prefect node_modules

# `directmail run` in this project finds the URL in .directmail/ and, while the server answers its health
# check, runs through it (without PREFECT_API_URL exported), so the run shows in the UI just opened.
ui:  ## Local Prefect server and UI on http://127.0.0.1:4200 (state in .prefect/); runs started here show in it
	@mkdir -p .directmail && echo "http://127.0.0.1:4200/api" > .directmail/prefect-api-url
	$(RUN) prefect server start --host 127.0.0.1 --port 4200

serve:  ## Serve the scheduled campaigns as Prefect deployments (needs `make ui` running)
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(RUN) directmail serve
