"""Benchmarks (`fleetcare bench ...`); results in docs/benchmarks.md."""
