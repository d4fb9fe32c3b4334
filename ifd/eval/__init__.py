"""Evaluation: the a[t][i] result matrix, retention metrics (AA, AF, BWT), scores, plots, attribution."""
