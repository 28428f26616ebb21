"""Contract fuzzing (run with `just fuzz`); not part of `just test`."""
