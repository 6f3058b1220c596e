"""Metrics, benchmark protocols and the evaluation loop."""
