"""Benchmarks behind ``microneedling bench``: medians and p95 over several runs.

``run_benchmarks`` is in ``runner``, not re-exported here: the load generator's client
processes import this package, and should not pay for the engines' imports at each start.
"""
