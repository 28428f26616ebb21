"""Management API for a Vintage Story dedicated server."""

__version__ = "0.1.0"
