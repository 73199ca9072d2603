"""Pure engines of the product: no Django, no clock, no I/O beyond reading the packaged pack.

Everything here takes plain data (dates, codes, the knowledge pack) and returns plain data,
so the web apps, the command line and the benchmarks all share one implementation.
"""
