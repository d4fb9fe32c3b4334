"""Prefect flows: thin wrappers whose tasks each call one ifd function."""
