# Two commands on a fresh machine with Python 3.11 and make:
#   make run    the main job end to end on the seed data
#   make test   the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench screenshots chromium postgresql lint clean

# The page's browser tests drive Debian's Chromium (Playwright's own browser download is not reachable).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The campaign store's tests also run on PostgreSQL: a throwaway cluster of Debian's postgresql binaries
# (initdb and pg_ctl into a temporary folder, tests/pg_cluster.py); the package's own server is not used.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq postgresql)

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/churnclv quickstart

# The suite runs on one worker per core; its slow tests start first (tests/conftest.py).
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

test: $(STAMP) chromium postgresql
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal

test-fast: $(STAMP) chromium postgresql
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow"

bench: $(STAMP) chromium
	$(VENV)/bin/python benchmarks/features.py
	$(VENV)/bin/python benchmarks/clv.py
	$(VENV)/bin/python benchmarks/serving.py
	$(VENV)/bin/python benchmarks/page.py
	$(VENV)/bin/python benchmarks/campaigns.py

# The README's pictures of the page, taken by its browser tests from the seed data.
screenshots: $(STAMP) chromium
	CHURNCLV_SCREENSHOTS=serving/page/screenshots $(VENV)/bin/python -m pytest -q tests/serving/test_page_browser.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV)
