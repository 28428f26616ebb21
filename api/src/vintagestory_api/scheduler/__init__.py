"""Scheduling internals that do not depend on APScheduler."""
