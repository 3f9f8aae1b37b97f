"""Benchmarks that measure promptlake's own write paths against their practical ceilings."""
