"""Browser tests: Playwright for Python driving Debian's Chromium against a live server.

Every page a test visits can be checked with axe-core (from the npm registry, installed by
``make e2e-deps``): serious or critical violations fail the test. Screenshots go to
``artifacts/screenshots/``. Without Chromium or axe-core the tests skip, except under
``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import mail

# The browser tests sign up and book several times a minute from 127.0.0.1, as no real
# visitor would: lift the rate limits for them as for the other web tests. Without this, a
# slow run's sign-ups landed in one minute and the 11th was refused with a 429.
from tests.web.conftest import _generous_rate_limits  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "artifacts" / "screenshots"
#: A phone's width: every patient page must work at 375 px.
PHONE = {"width": 375, "height": 812}

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests make
# between browser steps are ordinary synchronous calls on the test database.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: CI must run the browser tests")
    pytest.skip(f"{what} is missing (run make e2e-deps / install chromium)")


def chromium_path() -> str:
    """Debian's Chromium, found on the PATH."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _missing("chromium")
    return str(found)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole run."""
    path = chromium_path()
    if not AXE.exists():
        _missing("axe-core")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def phone(browser, live_server):  # type: ignore[no-untyped-def]
    """A fresh phone-sized page on the live server (own cookies, no shared sign-in)."""
    context = browser.new_context(viewport=PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def desk(browser, live_server):  # type: ignore[no-untyped-def]
    """A desktop-sized page for staff."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def check_accessibility(page) -> None:  # type: ignore[no-untyped-def]
    """Run axe-core on the page; fail on any serious or critical violation."""
    # Through the DevTools protocol, not a <script> tag: the pages' Content-Security-Policy
    # refuses inline script, and rightly so.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => await axe.run(document)")
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    summary = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:3]]}
        for v in bad
    ]
    assert not bad, f"{page.url}: {json.dumps(summary, indent=1)}"


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot under artifacts/screenshots/ and return its path."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


#: The password of the browser tests' accounts (not a secret).
PASSWORD = "a-long-harbour-walk"  # noqa: S105


def fill_sign_up(page, *, first: str, last: str, email: str, born: str, clinic: str) -> None:  # type: ignore[no-untyped-def]
    """Fill in the sign-up form (the caller presses the button, so it can check refusals)."""
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Date of birth").fill(born)
    page.get_by_label("Your clinic").select_option(label=clinic)
    page.get_by_label("Password").fill(PASSWORD)


def confirm_sign_up(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """After "Create account": follow the link the confirmation message carries, as the
    patient would from their inbox, and open the account."""
    page.get_by_role("heading", name="Check your e-mail").wait_for()
    sent = [m for m in mail.outbox if m.to == [email]]
    assert len(sent) == 1, f"{len(sent)} messages to {email}"
    link = re.search(r"https?://\S+/my/sign-up/\S+/\S+/", str(sent[0].body))
    assert link is not None, sent[0].body
    page.goto(link.group(0))
    page.get_by_role("button", name="Open my account").click()


def answer_intake(page, *, planned: str, skin: str) -> None:  # type: ignore[no-untyped-def]
    """A healthy intake for the face: the planned first day and the skin type's label."""
    page.get_by_label("When would you like your first session?").fill(planned)
    page.get_by_label("Face", exact=True).check()
    page.get_by_label(skin).check()
