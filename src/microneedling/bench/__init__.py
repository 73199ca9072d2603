"""Benchmarks behind ``microneedling bench``: medians and p95 over several runs."""

from microneedling.bench.runner import run_benchmarks

__all__ = ["run_benchmarks"]
