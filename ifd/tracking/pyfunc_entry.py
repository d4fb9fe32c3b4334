"""Models-from-code entry of the registered detector (MLflow copies this file into each model and runs
it on load): it names the pyfunc class; the weights come from the model's `state` artifact."""

import mlflow

from ifd.tracking.pyfunc_model import IfdDetectorModel

mlflow.models.set_model(IfdDetectorModel())
