# rubrong — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make demo` installs the runtime dependencies only; the development tools
# (pytest, mypy, ruff, …) come with the first target that needs them.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench profile clean

$(STAMP_RUN): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): $(STAMP_RUN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP_RUN)
	rm -rf demo-out && mkdir -p demo-out
	$(BIN)/rubrong simulate cycle_2554.toml --scenario scenarios/demo_2554.jsonl \
	    --keep-db sqlite:///demo-out/rubrong.db --maildir demo-out/mail

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

test: $(STAMP_DEV) lint
	$(BIN)/pytest -n 2 -q

bench: $(STAMP_RUN)
	$(BIN)/python -m bench

# `make profile BENCH=year`: one benchmark under cProfile, the top 25 by cumulative time.
BENCH ?= year
profile: $(STAMP_RUN)
	$(BIN)/python -m bench --profile $(BENCH)

clean:
	rm -rf $(VENV) demo-out build dist .pytest_cache .mypy_cache .ruff_cache
