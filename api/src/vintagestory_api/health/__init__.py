"""Liveness and readiness: aggregates each domain's health."""
