"""Benchmarks that print figures (`medflip bench ...`). Speed targets live here, not in timed tests."""
