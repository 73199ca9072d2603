"""A forgotten password is reset through a one-time link sent by real SMTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.web.sinks import MailSink, mail_sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings) -> Iterator[MailSink]:  # type: ignore[no-untyped-def]
    for sink in mail_sink():
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        yield sink


def _body(message) -> str:  # type: ignore[no-untyped-def]
    part = message.get_payload(decode=True) if not message.is_multipart() else None
    return (part or message.get_payload()[0].get_payload(decode=True)).decode()


def test_a_reset_link_arrives_works_once_and_sets_the_new_password(smtp: MailSink) -> None:
    user = get_user_model().objects.create_user(
        "cleo@example.test",
        email="cleo@example.test",
        password="old password 1",  # noqa: S106 (a test account's)
    )
    client = Client()
    sent = client.post(reverse("portal:password_reset"), {"email": "cleo@example.test"})
    assert sent.status_code == 302 and sent["Location"] == reverse("portal:password_reset_sent")
    assert len(smtp.received) == 1
    link = re.search(r"https?://[^/]+(/my/password-reset/[^\s]+)", _body(smtp.received[0]))
    assert link is not None
    form = client.get(link.group(1), follow=True)
    assert form.context["validlink"]
    new = "a brand new passphrase 9"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new) and user.password.startswith("argon2")
    # The link is spent.
    again = Client().get(link.group(1), follow=True)
    assert not again.context["validlink"]


def test_an_unknown_address_gets_the_same_answer_and_no_mail(smtp: MailSink) -> None:
    answer = Client().post(reverse("portal:password_reset"), {"email": "nobody@example.test"})
    assert answer.status_code == 302 and answer["Location"] == reverse("portal:password_reset_sent")
    assert smtp.received == []


def test_reset_requests_are_rate_limited(settings, smtp: MailSink) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache  # noqa: PLC0415

    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "RATE_LIMITS": {"password_reset": 2}}
    cache.clear()
    client = Client()
    codes = [
        client.post(
            reverse("portal:password_reset"), {"email": "x@example.test"}, REMOTE_ADDR="10.3.3.3"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [302, 302, 429]
