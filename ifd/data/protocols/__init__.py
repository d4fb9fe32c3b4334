"""Stream definitions of the published protocols (YAML, read by ifd/data/protocol.py)."""
