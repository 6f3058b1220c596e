"""Benchmark scripts (python -m benchmarks.<name>)."""
