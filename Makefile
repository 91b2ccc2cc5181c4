# Two commands on a fresh machine: `make demo` and `make test`; each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_ARGS ?=
# e.g. BENCH_ARGS="--audit-records 1000000" (opt-in), "--failover-kills 0 --checks-rate 0
# --broadcast-notices 0" to skip the parts run by default (see README)
BENCH_ARGS ?=
# the soak (docs/reliability.md): e.g. SOAK_ARGS="--minutes 3 --rate 100"
SOAK_ARGS ?= --minutes 10 --rate 200
# the notice storm (docs/reliability.md): e.g. STORM_ARGS="--rate 5 --seconds 10"
STORM_ARGS ?= --rate 50 --seconds 60

.PHONY: demo test lint typecheck unit integration bench soak storm clean

# the AsyncAPI parser that validates docs/asyncapi.yaml (tests/unit/test_contract.py)
PARSER := tools/asyncapi/node_modules/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,otlp]'
	touch $(STAMP)

$(PARSER): tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --no-audit --no-fund --ignore-scripts
	touch $(PARSER)

demo: $(STAMP)
	$(BIN)/i247 demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# the unit run measures branch coverage of schemas/ and streams' pure cores and fails under
# the gate ([tool.coverage] in pyproject.toml); the integration run is not measured
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q --cov

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test: lint typecheck $(PARSER) unit integration

bench: $(STAMP)
	$(BIN)/i247 bench $(BENCH_ARGS)

soak: $(STAMP)
	$(BIN)/python -m agents.bench.soak $(SOAK_ARGS)

storm: $(STAMP)
	$(BIN)/python -m agents.bench.storm $(STORM_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .coverage
