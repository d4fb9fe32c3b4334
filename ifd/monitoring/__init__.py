"""Monitoring of the served detector: drift of scores and embeddings, forgetting regressions,
unknown generators, the shadow challenger, and alerts that are never silent."""
