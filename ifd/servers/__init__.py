"""Real servers ifd can run on one machine for the shared setup: PostgreSQL (postgres.py) and the whole local
cluster on it (cluster.py: MLflow, Prefect and its workers, Dask, `ifd serve` replicas; make cluster)."""
