# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast lint repro mlflow prefect clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ifd demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check ifd flows registry monitoring tests

# The research path of dvc.yaml (synth -> train -> evaluate); its commands call `ifd`, so the venv goes on PATH.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	$(BIN)/dvc metrics show

# MLflow tracking server + UI on http://127.0.0.1:5000 over the workspace's own store (the SQLite file
# and artifact folder `ifd` writes to without a server); new artifacts are proxied into .ifd/mlartifacts.
# Point ifd at it with `export MLFLOW_TRACKING_URI=http://127.0.0.1:5000`.
mlflow: $(STAMP)
	mkdir -p .ifd/mlartifacts
	$(BIN)/mlflow server --backend-store-uri sqlite:///.ifd/mlflow.db --serve-artifacts --artifacts-destination .ifd/mlartifacts --host 127.0.0.1 --port 5000

# Prefect server + UI on http://127.0.0.1:4200; needed by `ifd worker` (event triggers run here, not in
# the temporary server a flow starts on its own). Then `export PREFECT_API_URL=http://127.0.0.1:4200/api`.
prefect: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/prefect server start --host 127.0.0.1 --port 4200

clean:
	rm -rf .ifd/demo artifacts .pytest_cache
