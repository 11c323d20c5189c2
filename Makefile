# corpusforge: `make run` then `make test` on a fresh machine. The virtualenv is created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The strict editable install links each module into a tree that static tools can read; a module added
# or removed changes this hash, hence the stamp's name, and `make env` rebuilds the tree.
MODULES_HASH := $(shell find package pipelines transforms schemas configs -name '*.py' -o -name '*.yaml' 2>/dev/null | LC_ALL=C sort | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(MODULES_HASH)
OUT ?= out/sample
SAMPLE ?= samples/sample
BENCH_DOCS ?= 20000
PYTEST_ARGS ?=
# pytest-xdist: one test process per core (`make test PYTEST_WORKERS=0` runs them in this process);
# --dist loadfile keeps a module's tests, hence its module-scoped pipeline run, in one process;
# --no-loadscope-reorder hands the modules out in collection order, longest first (tests/conftest.py:
# LONGEST_FIRST), instead of xdist's most-tests-first.
PYTEST_WORKERS ?= 2
PYTEST_XDIST = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)

# Cluster runs (see README, "Running on a cluster"). Set INPUT and OUTPUT to Beam filesystem paths.
INPUT ?=
OUTPUT ?=
CLUSTER_CONFIG ?= configs/cluster.yaml
PROJECT ?=
REGION ?= us-central1
TEMP_LOCATION ?= $(OUTPUT)/_tmp
STAGING_LOCATION ?= $(OUTPUT)/_staging
MACHINE_TYPE ?= n2-standard-4
MAX_WORKERS ?= 100
SPARK_MASTER ?= spark://localhost:7077
FLINK_MASTER ?= localhost:8081
ENVIRONMENT_TYPE ?= DOCKER
# EXTERNAL: SDK harness processes from `make worker-pool` (loopback) or a pool on each cluster machine
WORKER_POOL_PORT ?= 50000
ENVIRONMENT_CONFIG ?= 127.0.0.1:$(WORKER_POOL_PORT)
ENV_ARGS = --environment_type $(ENVIRONMENT_TYPE) $(if $(filter EXTERNAL,$(ENVIRONMENT_TYPE)),--environment_config $(ENVIRONMENT_CONFIG))
SDIST = dist/corpusforge-$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml).tar.gz

# Beam's Flink and Spark job servers (see README, "Flink and Spark"): the jars are fetched from Maven
# Central at the SDK's exact version (pinned in constraints.txt) into Beam's jar cache, under the name
# the SDK looks for (<artifact>-<version>.jar, the base name of its Maven URL), so nothing is
# downloaded at run time. FLINK_VERSION is the SDK's default --flink_version.
CONSTRAINTS := constraints.txt
BEAM_VERSION := $(shell sed -n 's/^apache-beam==\([^ ;]*\).*/\1/p' $(CONSTRAINTS))
FLINK_VERSION ?= 2.2
JAR_CACHE ?= $(HOME)/.apache_beam/cache/jars
JOB_SERVERS := beam-runners-flink-$(FLINK_VERSION)-job-server beam-runners-spark-3-job-server
MVN ?= mvn

.PHONY: env interop-env test-interop jars worker-pool run test test-fast bench bench-dedup bench-peers lint format tokenizer clean package dataflow spark flink check-cluster-vars toxicity-model

env: $(STAMP)

# pip byte-compiles what it installs, but not an editable tree: where PYTHONDONTWRITEBYTECODE is set
# (this machine's shells set it) every process of every run would compile corpusforge's ~110 modules
# from source again (~0.5 CPU s for the CLI's imports, in the driver and in the workers' parent).
# compileall writes the .pyc files regardless; a module edited later is compiled from source until
# the next `make env` or `make test`, as Python does when it may not write.
COMPILE_BYTECODE = $(BIN)/python -c "import compileall, os, corpusforge; compileall.compile_dir(os.path.dirname(corpusforge.__file__), quiet=1)" > /dev/null

# setup.py compiles transforms/tokenize/_pretokenize.c, transforms/language/_ngrams.c, transforms/bias/_bias_match.c, transforms/prompt/_gate_search.c and transforms/decontam/_grams.c (into the editable tree): a change to any
# rebuilds it. Strict editable mode: see pyproject.toml. constraints.txt pins what must agree.
$(STAMP): pyproject.toml setup.py transforms/tokenize/_pretokenize.c transforms/language/_ngrams.c transforms/bias/_bias_match.c transforms/prompt/_gate_search.c transforms/decontam/_grams.c $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools' warnings of the editable build go to a log, shown only when the install fails
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]' --config-settings editable_mode=strict \
	  > $(VENV)/install.log 2>&1 || (tail -n 40 $(VENV)/install.log; exit 1)
	$(COMPILE_BYTECODE)
	rm -f $(VENV)/.installed*
	touch $(STAMP)

# The interop environment (.venv-interop): corpusforge plus mosaicml-streaming and megatron-core, so
# that the tests marked `interop` check our MDS and Megatron shards with the packages' own writers
# and readers. They cannot share .venv (streaming pins numpy < 2.2; both need PyTorch, which PyPI
# serves for Linux only with its CUDA runtime). interop-requirements.txt pins the closure they need,
# installed with --no-deps, without what no test imports (triton, cloud and text extras: the file
# says why each is left out).
INTEROP_VENV ?= .venv-interop
INTEROP_REQS := interop-requirements.txt
INTEROP_STAMP := $(INTEROP_VENV)/.installed-$(MODULES_HASH)

interop-env: $(INTEROP_STAMP)

$(INTEROP_STAMP): pyproject.toml setup.py transforms/tokenize/_pretokenize.c transforms/language/_ngrams.c transforms/bias/_bias_match.c transforms/prompt/_gate_search.c transforms/decontam/_grams.c $(CONSTRAINTS) $(INTEROP_REQS)
	test -x $(INTEROP_VENV)/bin/python || $(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/python -m pip install --quiet -c $(CONSTRAINTS) -c $(INTEROP_REQS) -e . 'pytest>=8,<10' \
	  --config-settings editable_mode=strict > $(INTEROP_VENV)/install.log 2>&1 || (tail -n 40 $(INTEROP_VENV)/install.log; exit 1)
	$(INTEROP_VENV)/bin/python -m pip install --quiet --no-deps -r $(INTEROP_REQS) \
	  >> $(INTEROP_VENV)/install.log 2>&1 || (tail -n 40 $(INTEROP_VENV)/install.log; exit 1)
	rm -f $(INTEROP_VENV)/.installed*
	touch $(INTEROP_STAMP)

# transforms/quality/_signals.c (the quality signals, setup.py) rebuilds both environments too.
$(STAMP) $(INTEROP_STAMP): transforms/quality/_signals.c
# and so do transforms/toxicity/_terms.c (the toxicity term scan), transforms/pii/_gates.c
# and transforms/dedup/_minhash.c.
$(STAMP) $(INTEROP_STAMP): transforms/toxicity/_terms.c transforms/pii/_gates.c transforms/dedup/_minhash.c

# Only the interop tests; there a missing package fails them instead of skipping (CORPUSFORGE_INTEROP)
test-interop: $(INTEROP_STAMP)
	CORPUSFORGE_INTEROP=1 $(INTEROP_VENV)/bin/python -m pytest -m interop tests/transforms/tokenize tests/pipelines/test_incremental_formats.py $(PYTEST_ARGS)

# Fails (after trying both) when a jar cannot be had; the engine tests then skip, naming the jar.
jars:
	@command -v $(MVN) >/dev/null || { echo "make jars: $(MVN) not found (install Maven 3.8+)"; exit 1; }
	@mkdir -p $(JAR_CACHE); missing=""; \
	for a in $(JOB_SERVERS); do \
	  jar=$(JAR_CACHE)/$$a-$(BEAM_VERSION).jar; \
	  if [ -s $$jar ]; then echo "have $$jar"; continue; fi; \
	  if $(MVN) -B -q -U -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
	       -Dartifact=org.apache.beam:$$a:$(BEAM_VERSION) -DoutputDirectory=$(JAR_CACHE) >$(JAR_CACHE)/.$$a.log 2>&1 \
	     && [ -s $$jar ]; then echo "fetched $$jar"; \
	  else echo "make jars: org.apache.beam:$$a:$(BEAM_VERSION) could not be fetched:"; \
	       { grep -m1 'ERROR' $(JAR_CACHE)/.$$a.log || tail -n 3 $(JAR_CACHE)/.$$a.log; } | sed 's/\x1b\[[0-9;]*m//g'; missing="$$missing $$a"; fi; \
	done; test -z "$$missing"

run: $(STAMP)
	$(BIN)/corpusforge run --input $(SAMPLE) --output $(OUT) --config configs/sample.yaml --overwrite
	@echo "output written to $(OUT)/"

# pytest caches each test module's assertion-rewritten byte code in __pycache__ unless
# PYTHONDONTWRITEBYTECODE is set (as this machine's shells do): without the cache every process that
# collects (each xdist worker, each pytest a test starts) parses and rewrites every test module again,
# 11.0 against 6.7 CPU s of collection. Unset for the test runs.
PYTEST = env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

test: $(STAMP)
	@$(COMPILE_BYTECODE)
	$(PYTEST) $(PYTEST_XDIST) $(PYTEST_ARGS)

# the development loop: everything but the pipeline runs (marked slow), under a minute
test-fast: $(STAMP)
	@$(COMPILE_BYTECODE)
	$(PYTEST) -m "not slow" $(PYTEST_XDIST) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_bench.py --docs $(BENCH_DOCS) --out bench.json
	$(BIN)/python benchmarks/bench_previous.py  # the issue's sizes (100k index, 20k part); --reduced for a quick look

bench-dedup: $(STAMP)
	$(BIN)/python benchmarks/bench_dedup.py --baseline

# corpusforge (every stage) against datatrove's FineWeb recipe on one 8,000-document corpus, 2 workers,
# interleaved; datatrove goes into a throw-away virtualenv under build/peers/ (see benchmarks/bench_peers.py)
bench-peers: $(STAMP)
	$(BIN)/python benchmarks/bench_peers.py

# the project's default tokenizer (package/assets/tokenizer.json), same bytes every time
tokenizer: $(STAMP)
	$(BIN)/python scripts/train_tokenizer.py

# ruff check and ruff format --check over every Python folder (the settings are in pyproject.toml);
# `make format` rewrites the files.
LINT_PATHS := package pipelines transforms schemas configs tests benchmarks scripts setup.py
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/ruff check --fix $(LINT_PATHS)

# Rebuild package/assets/toxicity_linear.npz from alt-profanity-check (pinned; scikit-learn is
# needed only here, in a throw-away environment). The export is checked against the package and is
# byte-for-byte reproducible.
TOX_VENV ?= /tmp/corpusforge-toxicity-build
toxicity-model:
	test -x $(TOX_VENV)/bin/python || $(PYTHON) -m venv $(TOX_VENV)
	$(TOX_VENV)/bin/python -m pip install --quiet alt-profanity-check==1.9.1
	$(TOX_VENV)/bin/python scripts/build_toxicity_model.py

clean:
	rm -rf out .pytest_cache

# What cluster workers install: the source distribution, so that each worker compiles the optional
# C module (transforms/tokenize/_pretokenize.c) for its own platform, or installs without it where it has no
# compiler (same ids, pure Python).
package: $(STAMP)
	$(BIN)/python -m build --sdist --outdir dist . >/dev/null
	@echo "built $(SDIST)"

check-cluster-vars:
	@test -n "$(INPUT)" || (echo "set INPUT=gs://... (or s3://, hdfs://)"; exit 2)
	@test -n "$(OUTPUT)" || (echo "set OUTPUT=gs://... (or s3://, hdfs://)"; exit 2)

# Dataflow installs the package and its dependencies from PyPI on every worker.
dataflow: check-cluster-vars package
	@test -n "$(PROJECT)" || (echo "set PROJECT=<your GCP project>"; exit 2)
	$(BIN)/corpusforge run --input '$(INPUT)' --output '$(OUTPUT)' --config $(CLUSTER_CONFIG) \
	  --runner DataflowRunner --project $(PROJECT) --region $(REGION) \
	  --temp_location $(TEMP_LOCATION) --staging_location $(STAGING_LOCATION) \
	  --extra_package $(SDIST) --machine_type $(MACHINE_TYPE) --max_num_workers $(MAX_WORKERS) \
	  --experiments use_runner_v2

# Spark and Flink: Beam starts their job servers from the jars of `make jars` (Java 17).
spark: check-cluster-vars package
	$(BIN)/corpusforge run --input '$(INPUT)' --output '$(OUTPUT)' --config $(CLUSTER_CONFIG) \
	  --runner SparkRunner --spark_master_url $(SPARK_MASTER) $(ENV_ARGS) \
	  --extra_package $(SDIST)

flink: check-cluster-vars package
	$(BIN)/corpusforge run --input '$(INPUT)' --output '$(OUTPUT)' --config $(CLUSTER_CONFIG) \
	  --runner FlinkRunner --flink_master $(FLINK_MASTER) $(ENV_ARGS) \
	  --extra_package $(SDIST)

# SDK harness processes for ENVIRONMENT_TYPE=EXTERNAL, listening on 127.0.0.1:$(WORKER_POOL_PORT) (Ctrl-C stops it)
worker-pool: $(STAMP)
	$(BIN)/python -m corpusforge.pipelines.worker_pool --port $(WORKER_POOL_PORT)
