"""Course booking search: a slot for every session of a course, or a clear refusal.

See :func:`search_series`.
"""

from microneedling.core.series.engine import SlotSource, search_days, search_series
from microneedling.core.series.result import SeriesResult, SeriesScore, Weights

__all__ = [
    "SeriesResult",
    "SeriesScore",
    "SlotSource",
    "Weights",
    "search_days",
    "search_series",
]
