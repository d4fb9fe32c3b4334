"""The model lifecycle: retrain on top of the champion, gate on retention, reviewer decisions.

`gate` is pure (numbers in, report out); `retrain` holds the flow's steps as plain functions over
paths, names and dicts, so the Prefect flow in flows/retrain.py stays thin and tests need no Prefect;
`review` holds the reviewers' decisions. Everything MLflow lives in ifd.tracking.
"""
