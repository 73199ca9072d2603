"""The rate limit holds in every 60 seconds, not only within each minute of the clock."""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right

from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microneedling.web.security import RATE_BUCKET_SECONDS, too_many

#: A moment on a minute boundary of the clock, so that the offsets below are easy to read.
EPOCH_MINUTE = 1_800_000_000.0


def _scope() -> str:
    # A scope of its own per case: the shared cache keeps other cases' counts.
    return f"test-{uuid.uuid4().hex}"


def test_a_burst_across_a_minute_boundary_is_held_to_the_limit() -> None:
    scope = _scope()
    accepted = [
        not too_many(scope, "10.1.1.1", 2, now=EPOCH_MINUTE + offset) for offset in (55, 58, 61, 64)
    ]
    # A fixed minute of the clock would have let the last two through: four in nine seconds.
    assert accepted == [True, True, False, False]


def test_the_limit_frees_up_once_the_earlier_requests_have_left_the_minute() -> None:
    scope = _scope()
    for offset in (0, 1):
        assert not too_many(scope, "10.1.1.2", 2, now=EPOCH_MINUTE + offset)
    assert too_many(scope, "10.1.1.2", 2, now=EPOCH_MINUTE + 59)
    assert not too_many(scope, "10.1.1.2", 2, now=EPOCH_MINUTE + 60 + RATE_BUCKET_SECONDS)


def test_refused_requests_do_not_prolong_the_refusal() -> None:
    scope = _scope()
    assert not too_many(scope, "10.1.1.3", 1, now=EPOCH_MINUTE)
    # Hammering through the refusal is refused every time ...
    assert all(too_many(scope, "10.1.1.3", 1, now=EPOCH_MINUTE + s) for s in range(5, 60, 5))
    # ... and counts for nothing once the accepted request has left the minute.
    assert not too_many(scope, "10.1.1.3", 1, now=EPOCH_MINUTE + 60 + RATE_BUCKET_SECONDS)


def test_addresses_are_counted_apart() -> None:
    scope = _scope()
    assert not too_many(scope, "10.1.1.4", 1, now=EPOCH_MINUTE)
    assert too_many(scope, "10.1.1.4", 1, now=EPOCH_MINUTE + 1)
    assert not too_many(scope, "10.1.1.5", 1, now=EPOCH_MINUTE + 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(min_value=1, max_value=5),
    # Whole seconds: the bucket edges themselves are the cases that matter.
    gaps=st.lists(st.integers(min_value=0, max_value=40), max_size=30),
    start=st.integers(min_value=0, max_value=120),
)
def test_no_sixty_seconds_hold_more_than_the_limit_and_none_refuse_early(
    limit: int, gaps: list[int], start: int
) -> None:
    # The file cache culls a third of its entries past 300: an example's counts must not
    # be dropped by the entries earlier examples left behind.
    cache.clear()
    scope = _scope()
    moments: list[float] = []
    moment = EPOCH_MINUTE + start
    for gap in gaps:
        moment += gap
        moments.append(moment)
    accepted: list[float] = []
    for moment in moments:
        # Only what was accepted counts, so the earlier answers decide this one.
        recent_tight = len(accepted) - bisect_right(accepted, moment - 60)
        recent_wide = len(accepted) - bisect_left(accepted, moment - 60 - RATE_BUCKET_SECONDS)
        refused = too_many(scope, "10.2.2.2", limit, now=moment)
        if recent_tight >= limit:
            # Safety: the last 60 seconds already hold the limit.
            assert refused
        if recent_wide < limit:
            # Liveness: a bucket's width is all the limit may lag a true sliding minute.
            assert not refused
        if not refused:
            accepted.append(moment)
    for index, moment in enumerate(accepted):
        within = bisect_left(accepted, moment + 60) - index
        assert within <= limit
