"""Monitoring policy (YAML data) and its typed loader; the checks themselves live in ifd/monitoring."""
