"""Microneedling Clinic: runs a clinic's collagen induction therapy service end to end."""

__version__ = "0.1.0"
