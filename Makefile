# The README's commands. Everything is installed into .venv by this file; nothing else is assumed
# but Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export GX_ANALYTICS_ENABLED := false
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup demo test test-fast ui lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "sloscope needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# papermill runs report notebooks on this kernel, inside the venv (never a system-wide python3 kernel).
	$(BIN)/python -m ipykernel install --sys-prefix --name sloscope --display-name "Python (sloscope)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/sloscope demo

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

ui: setup
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/alert_latency.py
	$(BIN)/python benchmarks/analytics_speed.py
	$(BIN)/python benchmarks/anomaly_eval.py
	$(BIN)/python benchmarks/forecast_calibration.py --quick
	$(BIN)/python benchmarks/access_log_speed.py
	$(BIN)/python benchmarks/report_speed.py
	# 20 M events, 2 days (--help for the options; it prints the command of the full 100 M run)
	$(BIN)/python benchmarks/scale.py
	# 3,000 objectives over 30 days of minute aggregates; cold, warm and one new minute
	$(BIN)/python benchmarks/eval_speed.py

clean:
	rm -rf $(VENV) .dagster_home data/warehouse data/landing reports/*/
