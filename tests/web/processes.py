"""Running the app's own commands as separate processes against the test database."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import pytest
import requests
from django.db import connection


def database_env(**extra: str) -> dict[str, str]:
    """This environment, pointed at the test database (SQLite file or PostgreSQL)."""
    env = dict(os.environ)
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["MICRONEEDLING_SQLITE_PATH"] = str(db["NAME"])
        env.pop("DATABASE_URL", None)
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # The browser tests allow async-unsafe ORM calls in this process; a server must not.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DJANGO_SETTINGS_MODULE"] = "microneedling.config.settings"
    env.update(extra)
    return env


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds, or fail the test saying what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def answers(url: str) -> bool:
    """Whether something answers HTTP at ``url``."""
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True
