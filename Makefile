# corpusforge: `make run` then `make test` on a fresh machine. The virtualenv is created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/sample
SAMPLE ?= samples/sample
BENCH_DOCS ?= 20000
PYTEST_ARGS ?=

.PHONY: env run test bench lint tokenizer clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/corpusforge run --input $(SAMPLE) --output $(OUT) --config configs/sample.yaml --overwrite
	@echo "output written to $(OUT)/"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_bench.py --docs $(BENCH_DOCS)

lint: $(STAMP)
	$(BIN)/ruff check pipelines transforms schemas corpusforge tests benchmarks

clean:
	rm -rf out .pytest_cache
