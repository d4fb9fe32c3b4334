"""The data layer: batch format, adapters, validation, catalogue and DVC versioning."""
