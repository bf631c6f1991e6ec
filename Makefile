# Two commands do all set-up: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint migrate seed-demo worker bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/daiban serve

# Two processes (pytest-xdist); on PostgreSQL each has its own database beside the one
# given (test_gw0, test_gw1). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app mini_program_api storage jobs tests bench
	$(BIN)/ruff format --check app mini_program_api storage jobs tests bench
	$(BIN)/mypy app

migrate: $(STAMP)
	$(BIN)/daiban migrate

seed-demo: $(STAMP)
	$(BIN)/daiban seed-demo

worker: $(STAMP)
	$(BIN)/daiban worker

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

bench: $(STAMP)
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/uploads.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/jobs.py
