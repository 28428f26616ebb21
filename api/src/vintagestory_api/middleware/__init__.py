"""ASGI middleware: request ids and access logging."""
