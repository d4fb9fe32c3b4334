"""Everything that talks to MLflow (the only package that imports mlflow): the tracking store, runs,
the model registry and the pyfunc model."""
