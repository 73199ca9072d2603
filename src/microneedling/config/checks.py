"""The project's own deploy checks, run with Django's by ``microneedling check --deploy``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def health_data_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """What a deployment holding health records must have beyond Django's own checks."""
    problems: list[Any] = []
    if settings.DEBUG:
        problems.append(Error("DJANGO_DEBUG must be 0: debug pages show data", id="mn.E001"))
    if "axes" not in settings.INSTALLED_APPS:
        problems.append(Error("sign-in throttling (django-axes) is off", id="mn.E002"))
    if not settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher"):
        problems.append(Error("passwords must be hashed with Argon2", id="mn.E003"))
    if settings.SESSION_COOKIE_AGE > 60 * 60:
        problems.append(
            Error("sessions must end after at most an hour without activity", id="mn.E004")
        )
    if "microneedling.web.security.SecurityHeadersMiddleware" not in settings.MIDDLEWARE:
        problems.append(Error("the Content-Security-Policy middleware is missing", id="mn.E005"))
    if not settings.MICRONEEDLING["STAFF_TWO_FACTOR"]:
        problems.append(Error("staff must sign in with two factors", id="mn.E006"))
    if not settings.MICRONEEDLING["PUBLIC_URL"].startswith("https://"):
        problems.append(
            Warning(
                "MICRONEEDLING_PUBLIC_URL is not https: links in messages would go out in clear",
                id="mn.W001",
            )
        )
    if settings.MICRONEEDLING["SMS_BACKEND"] == "console":
        problems.append(
            Warning(
                "text messages are written to the server's output, not sent (the console SMS "
                "backend): patients who chose texts get nothing, and what the texts say (visit "
                "times and places) lands in the logs. Set MICRONEEDLING_SMS_BACKEND=webhook",
                id="mn.W002",
            )
        )
    if not settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        problems.append(
            Warning(
                "e-mail is written to files under the data folder, not sent: set "
                "EMAIL_HOST (and EMAIL_PORT, EMAIL_USE_TLS, …) to a mail server",
                id="mn.W003",
            )
        )
    return problems
