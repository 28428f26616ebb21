"""The game server: its supervision (start, stop, crashes), console and players."""
