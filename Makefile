# corpusforge: `make run` then `make test` on a fresh machine. The virtualenv is created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/sample
SAMPLE ?= samples/sample
BENCH_DOCS ?= 20000
PYTEST_ARGS ?=

.PHONY: env run test bench lint tokenizer clean toxicity-model

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/corpusforge run --input $(SAMPLE) --output $(OUT) --overwrite
	@echo "output written to $(OUT)/"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_bench.py --docs $(BENCH_DOCS)

lint: $(STAMP)
	$(BIN)/ruff check pipelines transforms schemas corpusforge tests benchmarks

# Rebuild corpusforge/assets/toxicity_linear.npz from alt-profanity-check (pinned; scikit-learn is
# needed only here, in a throw-away environment). The export is checked against the package and is
# byte-for-byte reproducible.
TOX_VENV ?= /tmp/corpusforge-toxicity-build
toxicity-model:
	test -x $(TOX_VENV)/bin/python || $(PYTHON) -m venv $(TOX_VENV)
	$(TOX_VENV)/bin/python -m pip install --quiet alt-profanity-check==1.9.1
	$(TOX_VENV)/bin/python scripts/build_toxicity_model.py

clean:
	rm -rf out .pytest_cache
