# The two commands of the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv lint clean bench bench-quick chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/kosh up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy domain infra projections api consumers bench

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# Writes bench/RESULTS.md and bench/results.json (under 10 minutes).
bench: $(STAMP)
	$(BIN)/python -m bench

# Smoke sizes, written under build/ (under a minute).
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --out build/bench-quick

# Long fault runs on SQLite and PostgreSQL (tests/faults/ runs short ones in `make test`);
# CHAOS_ARGS="--faults 30 --rounds 3 --seed 7" for more. Figures under data/chaos-<time>/.
chaos: $(STAMP)
	$(BIN)/python -m chaos.run $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) data/*.sqlite* data/*.pem
