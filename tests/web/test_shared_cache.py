"""Several app servers share their rate-limit counts through Redis (the machine's own)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.web.processes import database_env

REDIS = "redis://127.0.0.1:6379/15"


def _count_in_another_process(scope: str, now: float) -> str:
    code = (
        "import django; django.setup();"
        "from microneedling.web.security import too_many;"
        f"print(too_many({scope!r}, '10.5.5.5', 2, now={now!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=database_env(MICRONEEDLING_REDIS_URL=REDIS),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.django_db
def test_two_processes_on_redis_count_one_limit_together() -> None:
    import redis  # noqa: PLC0415

    try:
        redis.Redis.from_url(REDIS).flushdb()
    except redis.ConnectionError as error:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379: {error}")
    scope = "shared-test"
    # One moment for all three, so that they count in one window of the clock even when the
    # three processes take long enough to cross into the next minute.
    now = time.time()
    # Two servers, one limit of 2 a minute: the third request, wherever it lands, is over.
    counted = [_count_in_another_process(scope, now) for _ in range(3)]
    assert counted == ["False", "False", "True"]
    # Half a minute on, the two accepted requests still count, whichever minute it is; once
    # they have left the minute (and the 10-second bucket they were counted in), they do not.
    assert _count_in_another_process(scope, now + 30) == "True"
    assert _count_in_another_process(scope, now + 70) == "False"
