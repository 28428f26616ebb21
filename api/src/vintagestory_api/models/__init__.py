"""Pydantic schemas of everything the API sends and receives."""
