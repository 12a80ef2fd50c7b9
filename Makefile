# predictflow: `make demo` runs the pipeline locally, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint typecheck checkov pytest model bench bench-quality reliability clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
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

test: lint typecheck checkov pytest

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
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/train_quality.py --candidate trainer_candidate:candidate
	$(BIN)/python benchmarks/train_time.py

clean:
	rm -rf $(VENV) .venv-checkov out build .pytest_cache .mypy_cache .ruff_cache
