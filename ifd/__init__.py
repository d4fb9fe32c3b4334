"""ifd: incremental forgery detection with the operations around it."""

__version__ = "0.1.0"
