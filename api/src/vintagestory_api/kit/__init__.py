"""Domain-free plumbing: the response envelope, durable state files, the HTTP client, the
single-instance lock, the request-id middleware and version ordering."""
