# Two commands do all set-up: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Exact versions of every package the service, the tests and the linters use, so that an
# install is the same on every machine; `make constraints` writes it anew (newest releases).
CONSTRAINTS := constraints.txt
# What each target installs: `make run` the service alone; tests and linters on top of it.
EXTRAS_run :=
EXTRAS_test := [test]
EXTRAS_lint := [lint]
STAMP := $(VENV)/.installed-run

.PHONY: run test lint migrate seed-demo worker bench screenshots clean constraints

$(VENV)/.installed-%: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.$(EXTRAS_$*)'
	touch $@

run: $(STAMP)
	$(BIN)/daiban serve

# Two processes (pytest-xdist); on PostgreSQL each has its own database beside the one
# given (test_gw0, test_gw1). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check app mini_program_api console storage jobs tests bench docs/screenshots
	$(BIN)/ruff format --check app mini_program_api console storage jobs tests bench docs/screenshots
	$(BIN)/mypy app console

migrate: $(STAMP)
	$(BIN)/daiban migrate

seed-demo: $(STAMP)
	$(BIN)/daiban seed-demo

worker: $(STAMP)
	$(BIN)/daiban worker

# The console's pages as PNGs for docs/console.md (needs Debian's chromium and a Chinese
# font, fonts-wqy-microhei, from apt-get).
screenshots: $(VENV)/.installed-test
	$(BIN)/python docs/screenshots/take.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet '.[test,lint]'
	.venv-constraints/bin/python -m pip freeze --exclude-editable | grep -v '^daiban' > $(CONSTRAINTS)
	rm -rf .venv-constraints build

bench: $(STAMP)
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/uploads.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/jobs.py
	$(BIN)/python bench/retention.py
