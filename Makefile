# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps demo test test-fast lint repro mlflow prefect clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ifd demo

# promtool, PostgreSQL and sshd: the tests run these for real (Debian packages, installed when missing)
sysdeps:
	./scripts/system_deps.sh

test: $(STAMP) sysdeps
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
# `make mlflow AUTH=1` starts it behind MLflow's basic auth (registry/basic_auth.ini; users in
# .ifd/mlflow-auth.db; the first start needs MLFLOW_AUTH_ADMIN_PASSWORD; the CSRF key MLflow requires is made
# once in .ifd/mlflow-flask-secret unless MLFLOW_FLASK_SERVER_SECRET_KEY is set): ifd approve/reject/rollback then
# record the signed-in user (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) as the reviewer.
mlflow: $(STAMP)
	mkdir -p .ifd/mlartifacts
ifdef AUTH
	@test -f .ifd/mlflow-auth.db -o -n "$$MLFLOW_AUTH_ADMIN_PASSWORD" || { echo "make mlflow AUTH=1: set MLFLOW_AUTH_ADMIN_PASSWORD for the first start (it creates the admin user)"; exit 2; }
	@test -f .ifd/mlflow-flask-secret || $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > .ifd/mlflow-flask-secret
	MLFLOW_FLASK_SERVER_SECRET_KEY="$${MLFLOW_FLASK_SERVER_SECRET_KEY:-$$(cat .ifd/mlflow-flask-secret)}" MLFLOW_AUTH_CONFIG_PATH=registry/basic_auth.ini $(BIN)/mlflow server --app-name basic-auth --backend-store-uri sqlite:///.ifd/mlflow.db --serve-artifacts --artifacts-destination .ifd/mlartifacts --host 127.0.0.1 --port 5000
else
	$(BIN)/mlflow server --backend-store-uri sqlite:///.ifd/mlflow.db --serve-artifacts --artifacts-destination .ifd/mlartifacts --host 127.0.0.1 --port 5000
endif

# Prefect server + UI on http://127.0.0.1:4200; needed by `ifd worker` (event triggers run here, not in
# the temporary server a flow starts on its own). Then `export PREFECT_API_URL=http://127.0.0.1:4200/api`.
prefect: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Shared servers on one real PostgreSQL 15 cluster (Debian's binaries; data in .ifd/postgres, 127.0.0.1:5433,
# databases mlflow, optuna, prefect, predictions; the password is generated into .ifd/postgres/password).
# `python -m ifd.servers.postgres url DB` prints a database's SQLAlchemy URL, e.g. for the prediction log:
# `export IFD_PREDICTION_LOG_URL=$$(.venv/bin/python -m ifd.servers.postgres url predictions)`.
.PHONY: postgres postgres-stop mlflow-pg prefect-pg
PG := $(BIN)/python -m ifd.servers.postgres
MLFLOW_PG_ARTIFACTS ?= .ifd/mlartifacts
postgres: $(STAMP)
	$(PG) start

postgres-stop: $(STAMP)
	$(PG) stop

# MLflow tracking server on Postgres (its URL, password included, passed in the environment, not on the command
# line that `ps` shows), artifacts proxied by the server (clients need no access to the store);
# MLFLOW_PG_ARTIFACTS may be a bucket (s3://…, needs boto3 and the usual AWS credentials on the server).
mlflow-pg: postgres
	case "$(MLFLOW_PG_ARTIFACTS)" in *://*) ;; *) mkdir -p "$(MLFLOW_PG_ARTIFACTS)" ;; esac
	MLFLOW_BACKEND_STORE_URI="$$($(PG) url mlflow)" $(BIN)/mlflow server --serve-artifacts --artifacts-destination $(MLFLOW_PG_ARTIFACTS) --host 127.0.0.1 --port 5000

# Prefect server on Postgres (asyncpg): concurrent flow runs and workers without SQLite's "database is locked".
prefect-pg: postgres
	PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_API_DATABASE_CONNECTION_URL="$$($(PG) url prefect --driver asyncpg)" $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# The whole shared setup on loopback from one supervisor (ifd/servers/cluster.py): Postgres (:5433), MLflow on it
# (:5000, artifacts proxied), Prefect on it (:4200) with 2 workers on the pool ifd-retrain, a Dask scheduler
# (:8786) with 2 workers, 2 `ifd serve` replicas (:8001, :8002) on one Postgres prediction log; workspace
# .ifd/cluster/workspace. Runs in the foreground until Ctrl-C or `make cluster-stop`; pids, logs and a
# sourceable env file in .ifd/cluster/. CLUSTER_ARGS passes options (python -m ifd.servers.cluster --help).
.PHONY: cluster cluster-stop demo-cluster
cluster: $(STAMP)
	$(BIN)/python -m ifd.servers.cluster up $(CLUSTER_ARGS)

cluster-stop: $(STAMP)
	$(BIN)/python -m ifd.servers.cluster stop

# The demo's loop on a running `make cluster` (another terminal): ingest -> retrain on the work pool -> gate ->
# register -> approve -> both replicas score -> the monitor reads the shared prediction log.
demo-cluster: $(STAMP)
	$(BIN)/python -m ifd.demo_cluster

clean:
	rm -rf .ifd/demo artifacts .pytest_cache
