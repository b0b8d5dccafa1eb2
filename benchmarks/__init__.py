"""Benchmarks: scripts that measure the engine against rate-limited fakes (not timed tests)."""
