"""Benchmarks: `python -m bench` (full) or `python -m bench --quick`."""
