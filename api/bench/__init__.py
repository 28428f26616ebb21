"""Side-by-side benchmarks of the service against bare baselines (`just bench`); not tests."""
