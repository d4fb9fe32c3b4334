"""LID presets as YAML deltas over LIDConfig's defaults (a package so that the YAML files ship in wheels)."""
