"""Inference: turn images (paths, bytes, arrays) into p(fake), a label, the attributed generator and
an unknown-generator flag. One scorer for the MLflow pyfunc model, the scoring API and the monitor."""
