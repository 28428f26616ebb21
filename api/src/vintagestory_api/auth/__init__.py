"""API keys and roles: who a request is, and what it may do."""
