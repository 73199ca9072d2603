"""Re-homing: new places and times for the visits a closure or a provider's move displaces.

:func:`plan_rehoming` is the fast method the product uses (a greedy search over live free
time, nearest and least-shifted first); :func:`solve_exact` states the same problem for
OR-Tools CP-SAT, to check the fast plan's objective against the best CP-SAT finds.
"""

from microneedling.core.rehoming.exact import ExactResult, solve_exact
from microneedling.core.rehoming.model import (
    Placement,
    Plan,
    Site,
    Visit,
    Weights,
    plan_violations,
    sites_without,
)
from microneedling.core.rehoming.search import plan_rehoming

__all__ = [
    "ExactResult",
    "Placement",
    "Plan",
    "Site",
    "Visit",
    "Weights",
    "plan_rehoming",
    "plan_violations",
    "sites_without",
    "solve_exact",
]
