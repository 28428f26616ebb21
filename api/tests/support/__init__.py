"""Shared test helpers: fakes, stub servers, settings and process runners."""
