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

# The demo runs FY2554 as the OPDC would deploy it: notices that fall on a receiver's weekend
# or holiday go out on the business day before (the file keeps CONTRACT.md's dates by default).
demo: $(STAMP_RUN)
	rm -rf demo-out && mkdir -p demo-out
	sed 's/^non_business_days = "keep"/non_business_days = "previous"/' cycle_2554.toml \
	    > demo-out/cycle_2554.toml
	grep -q '^non_business_days = "previous"' demo-out/cycle_2554.toml
	$(BIN)/rubrong simulate demo-out/cycle_2554.toml --scenario scenarios/demo_2554.jsonl \
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
