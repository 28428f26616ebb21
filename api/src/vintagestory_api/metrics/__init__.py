"""Resource samples of the API, the game server, the host and the disk; Prometheus exposition."""
