"""Sending one rendered message: email through Django's mail backend (SMTP in production),
text messages through a backend chosen in settings (a webhook-style HTTP provider, or the
console for the demo). A failure raises; the caller records it and retries later."""

from __future__ import annotations

import contextlib
import json
import smtplib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend


@dataclass
class Rendered:
    """A message ready to go: subject and body, and any attachments (name, bytes, type)."""

    subject: str
    body: str
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)


class DeliveryError(Exception):
    """The channel refused or failed to take the message (the text is safe to store)."""


_mail: BaseEmailBackend | None = None


def _mail_connection() -> BaseEmailBackend:
    # One connection per worker process, kept open across messages: opening SMTP for each
    # message costs more than sending it.
    global _mail  # noqa: PLW0603
    if _mail is None:
        _mail = get_connection(fail_silently=False)
        _mail.open()
    return _mail


def _mail_reset() -> None:
    global _mail  # noqa: PLW0603
    if _mail is not None:
        with contextlib.suppress(Exception):  # closing a broken connection may fail too
            _mail.close()
    _mail = None


def email_send(*, to: str, rendered: Rendered, message_id: str) -> None:
    """Send one email with a Message-ID fixed by the message's idempotency key."""
    mail = EmailMessage(
        subject=rendered.subject,
        body=rendered.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": message_id},
    )
    for name, content, mimetype in rendered.attachments:
        mail.attach(name, content, mimetype)
    try:
        try:
            sent = _mail_connection().send_messages([mail])
        except smtplib.SMTPServerDisconnected:
            # The kept connection went stale: servers drop one idle for a few minutes. Nothing
            # was taken over it, so one fresh connection tries again rather than spending a
            # retry (and a minute's wait) on the server's housekeeping.
            _mail_reset()
            sent = _mail_connection().send_messages([mail])
    except Exception as error:
        _mail_reset()
        raise DeliveryError(f"mail server: {type(error).__name__}") from error
    if sent != 1:
        _mail_reset()
        raise DeliveryError("mail server did not accept the message")


def sms_send(*, to: str, text: str, message_id: str) -> None:
    """Send one text message through the configured SMS backend."""
    config = settings.MICRONEEDLING
    backend = config["SMS_BACKEND"]
    if backend == "console":
        sys.stdout.write(f"SMS {message_id} to …{to[-4:]}: {text}\n")
        return
    if backend != "webhook":
        raise DeliveryError(f"unknown SMS backend {backend!r}")
    url = config["SMS_WEBHOOK_URL"]
    if not url.startswith(("http://", "https://")):
        raise DeliveryError("MICRONEEDLING_SMS_WEBHOOK_URL must be an http(s) address")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps({"to": to, "text": text, "id": message_id}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {config['SMS_WEBHOOK_TOKEN']}",
            "Idempotency-Key": message_id,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"SMS provider answered {error.code}") from error
    except OSError as error:  # unreachable, refused, timed out
        raise DeliveryError(f"SMS provider: {type(error).__name__}") from error
    if not 200 <= status < 300:
        raise DeliveryError(f"SMS provider answered {status}")
