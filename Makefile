# litlab: `make train` sets up .venv and runs the main job; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?=
ARGS ?=
# the suite is mostly subprocesses that spend their first seconds importing on one core: a pytest
# worker per core keeps every core busy (pytest-xdist; TEST_WORKERS=0 runs it in one process)
TEST_WORKERS ?= auto
SHARED_DATA ?= ../shared/data
REAL_DATA := $(if $(DATA_DIR),$(DATA_DIR),$(SHARED_DATA))
DATA_ARG := $(if $(DATA_DIR),paths.data_dir=$(abspath $(DATA_DIR)))

.PHONY: install train test test-slow results bench report ablation lint format clean gpu-wheels gpu-rehearsal test-heavy test-slurm test-ddp

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

train: install  ## the main job: reference CNN on CIFAR-10 (DATA_DIR=... for a local copy)
	$(PY) src/train.py model=cnn data=cifar10 $(DATA_ARG) $(ARGS)

test: install  ## default suite (tiny generated data, no network, < 10 min on 2 cores)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

test-heavy: install  ## tiny data but long: real kills and races, the DCGAN scores, transfer (CI runs it)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m heavy

test-ddp: install  ## every experiment under DDP and FSDP on 2 CPU processes: ranks agree, failures recorded (CI runs it)
	$(PY) -m pytest -q -m ddp

test-slurm: install  ## on a real SLURM cluster started here (scripts/slurm_cluster.sh; CI runs it)
	bash scripts/slurm_cluster.sh start
	LITLAB_REQUIRE_SLURM=1 SLURM_CONF="$$(bash scripts/slurm_cluster.sh conf)" $(PY) -m pytest -q -m slurm; \
		status=$$?; bash scripts/slurm_cluster.sh stop; exit $$status

test-slow: install  ## real-data accuracy and long runs (reads $(REAL_DATA))
	LITLAB_REAL_DATA=$(abspath $(REAL_DATA)) $(PY) -m pytest -q -m slow

results: install  ## rerun the reference experiments on real data and regenerate RESULTS.md
	$(PY) scripts/results.py --data-dir $(abspath $(REAL_DATA)) $(ARGS)

bench: install  ## throughput and startup benchmarks; regenerates BENCHMARKS.md
	$(PY) scripts/bench.py --data-dir $(abspath $(REAL_DATA)) $(ARGS)

report: install  ## tables and plots of a sweep: make report SWEEP=logs/train/multiruns/<time>
	$(PY) src/report.py $(SWEEP) $(ARGS)

ablation: install  ## run one study of experiments/ and regenerate its folder: make ablation STUDY=mlp_vs_cnn
	$(PY) scripts/ablation.py $(STUDY) --data-dir $(abspath $(REAL_DATA)) $(ARGS)

gpu-wheels:  ## the wheels the lent GPU's image lacks, into .whl/ (carried by the device call)
	mkdir -p .whl
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: -d .whl hydra-core==1.3.8 omegaconf==2.3.1
	$(PYTHON) -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3

gpu-rehearsal: install  ## scripts/gpu_check.py on this CPU, tiny data: what the GPU check runs, rehearsed
	$(PY) -m pytest -q -m slow tests/test_gpu_check.py

lint: install
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts

format: install
	$(PY) -m ruff format src tests scripts
	$(PY) -m ruff check --fix src tests scripts

clean:
	rm -rf $(VENV) logs .pytest_cache .ruff_cache
