"""Async job functions; each receives the services it uses as arguments."""
