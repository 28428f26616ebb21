"""Reusable test support: the fake Vintage Story server and its helpers."""
