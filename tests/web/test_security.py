"""Hardening: hashing, lock-out, sessions, headers, rate limits and the deploy checks."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.web.conftest import MONDAY, NOW, Clinic, local, make_patient

pytestmark = pytest.mark.django_db
PASSWORD = "a long Passphrase 42!"  # noqa: S105 (a test account's)


@pytest.fixture
def cleo(clinic: Clinic):  # type: ignore[no-untyped-def]
    patient = make_patient(clinic)
    patient.user = get_user_model().objects.create_user(
        patient.email, email=patient.email, password=PASSWORD
    )
    patient.save()
    return patient


def _sign_in(client: Client, username: str, password: str, address: str = "10.0.0.7"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("portal:sign_in"),
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def test_passwords_are_stored_as_argon2id(cleo) -> None:  # type: ignore[no-untyped-def]
    assert cleo.user.password.startswith("argon2$argon2id$")


def test_five_wrong_passwords_lock_the_account_out_from_that_address(cleo) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    for _ in range(4):
        assert _sign_in(client, cleo.email, "wrong").status_code == 200
    assert _sign_in(client, cleo.email, "wrong").status_code == 429  # the fifth locks
    locked = _sign_in(client, cleo.email, PASSWORD)
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    assert "Signing in is paused" in locked.content.decode()
    # Another address is not locked out by this one's failures.
    assert _sign_in(Client(), cleo.email, PASSWORD, address="10.0.0.8").status_code == 302


def test_signing_in_rotates_the_session_key(cleo) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.get(reverse("portal:sign_in"))
    session = client.session
    session["seen"] = True
    session.save()
    before = session.session_key
    assert _sign_in(client, cleo.email, PASSWORD).status_code == 302
    assert client.session.session_key != before


def test_a_session_ends_after_thirty_idle_minutes(cleo) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    with time_machine.travel(NOW, tick=False) as clock:
        client.force_login(cleo.user)
        assert client.get(reverse("portal:home")).status_code == 200
        clock.shift(timedelta(minutes=29))
        assert client.get(reverse("portal:home")).status_code == 200  # activity extends it
        clock.shift(timedelta(minutes=31))
        idle = client.get(reverse("portal:home"))
    assert idle.status_code == 302 and "/sign-in/" in idle["Location"]


def test_pages_carry_a_policy_without_inline_script_and_no_inline_code(cleo) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(cleo.user)
    for url in ("/", reverse("web:treatment"), reverse("portal:home"), reverse("portal:record")):
        page = client.get(url)
        policy = page["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        html = page.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\son[a-z]+=|\sstyle=|<style", html), url
        assert page["Cache-Control"] == "no-store"
        assert page["X-Frame-Options"] == "DENY"


def test_sign_up_is_rate_limited_per_address_with_a_problem(settings, clinic: Clinic) -> None:  # type: ignore[no-untyped-def]
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "RATE_LIMITS": {"sign_up": 3}}
    cache.clear()
    client = Client()
    answers = [
        client.post(reverse("portal:sign_up"), {}, REMOTE_ADDR="10.9.9.9").status_code
        for _ in range(4)
    ]
    assert answers[:3] == [200, 200, 200] and answers[3] == 429
    refused = client.post(reverse("portal:sign_up"), {}, REMOTE_ADDR="10.9.9.9")
    assert refused["Content-Type"] == "application/problem+json"
    assert refused["Retry-After"] == "70"
    assert client.post(reverse("portal:sign_up"), {}, REMOTE_ADDR="10.9.9.10").status_code == 200


@pytest.mark.usefixtures("frozen_now")
def test_booking_through_the_api_is_rate_limited(  # type: ignore[no-untyped-def]
    settings, clinic: Clinic, staff_token: str
) -> None:
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "RATE_LIMITS": {"booking": 2}}
    cache.clear()
    body = {
        "patient_id": make_patient(clinic).pk,
        "location_id": clinic.location.pk,
        "service_id": clinic.treatment.pk,
        "provider_id": clinic.ada.pk,
        "starts_at": local(MONDAY, 10).isoformat(),
    }
    client = Client(HTTP_AUTHORIZATION=f"Bearer {staff_token}", REMOTE_ADDR="10.7.7.7")
    codes = [
        client.post("/api/v1/appointments", body, content_type="application/json").status_code
        for _ in range(3)
    ]
    assert codes == [201, 409, 429]
    refused = client.post("/api/v1/appointments", body, content_type="application/json")
    assert refused["Content-Type"] == "application/problem+json"
    assert refused["Retry-After"] == "70"
    assert refused.json()["title"] == "Too many requests"


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The browser tests allow async-unsafe ORM calls in this process; a server must not.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run(
        [sys.executable, "-m", "microneedling.cli", "check", "--deploy"],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_deploy_checks_pass_on_production_settings_and_fail_in_debug() -> None:
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "clinic.example.org",
        "MICRONEEDLING_PUBLIC_URL": "https://clinic.example.org",
        "EMAIL_HOST": "smtp.example.org",
        "MICRONEEDLING_SMS_BACKEND": "webhook",
        "MICRONEEDLING_SMS_WEBHOOK_URL": "https://sms.example.org/send",
    }
    passed = _check(production)
    assert passed.returncode == 0, passed.stderr
    failed = _check({"DJANGO_DEBUG": "1"})
    assert failed.returncode == 1
    assert "mn.E001" in failed.stderr and "security.W004" in failed.stderr


def test_a_nul_character_is_refused_before_any_view_reads_it(staff_token: str) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {staff_token}")
    api = client.get("/api/v1/locations?zip=78%00209")
    assert api.status_code == 400 and api["Content-Type"] == "application/problem+json"
    posted = client.post("/api/v1/appointments", '{"note": "a\\u0000b"}', "application/json")
    assert posted.status_code == 400
    fhir = client.get("/fhir/R4/Patient?name=%00")
    assert fhir.status_code == 400 and fhir.json()["resourceType"] == "OperationOutcome"
    form = "first_name=Cle%00o"
    page = client.post(reverse("portal:sign_up"), form, "application/x-www-form-urlencoded")
    assert page.status_code == 400
    # In a multipart form, Django's own field check names the field instead.
    multipart = client.post(reverse("portal:sign_up"), {"first_name": "Cle\x00o"})
    assert "Null characters are not allowed" in multipart.content.decode()


def test_an_oversized_api_body_is_refused_in_the_apis_own_format(
    settings, staff_token: str
) -> None:  # type: ignore[no-untyped-def]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {staff_token}")
    body = '{"note": "' + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'
    api = client.post("/api/v1/appointments", body, "application/json")
    assert api.status_code == 413 and api["Content-Type"] == "application/problem+json"
    assert api.json()["detail"].startswith("body: is larger than")
    fhir = client.post("/fhir/R4/Appointment", body, "application/fhir+json")
    assert fhir.status_code == 413
    assert fhir.json()["issue"][0]["code"] == "too-long"
    # A page's form refuses it as Django does, with a 400.
    form = "first_name=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    page = client.post(reverse("portal:sign_up"), form, "application/x-www-form-urlencoded")
    assert page.status_code == 400
    # A body within the limit reaches the view, which judges it as usual.
    small = client.post("/api/v1/appointments", '{"note": "x"}', "application/json")
    assert small.status_code == 422


def test_uploaded_photos_are_never_served_as_files(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "session-photos").mkdir()
    (tmp_path / "session-photos" / "a.png").write_bytes(b"\x89PNG")
    client = Client()
    for url in (
        f"{settings.MEDIA_URL}session-photos/a.png",
        "/static/../private/session-photos/a.png",
        "/session-photos/a.png",
    ):
        assert client.get(url).status_code == 404, url
    assert not str(settings.MEDIA_ROOT).startswith(str(settings.STATIC_ROOT))


def test_log_lines_never_carry_an_email_address_or_a_query(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging  # noqa: PLC0415

    from microneedling.web.logs import RedactPersonalData  # noqa: PLC0415

    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Forbidden: %s for %s",
        ("/desk/visits/3/?q=cleo.marsh@example.test", "cleo.marsh@example.test +1 210 555 0123"),
        None,
    )
    assert RedactPersonalData().filter(record)
    text = record.getMessage()
    assert "cleo" not in text and "555" not in text and "?q=" not in text
    assert "/desk/visits/3/" in text


def test_the_data_folder_is_made_private_to_the_server_account(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A folder another account could read (the usual 0755 of a fresh mkdir), and none yet.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    for folder in (shared, tmp_path / "fresh" / "data"):
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(
            MICRONEEDLING_DATA_DIR=str(folder),
            DJANGO_SETTINGS_MODULE="microneedling.config.settings",
        )
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            env=env,
            check=True,
            timeout=120,
        )
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_stored_photos_are_readable_by_the_server_account_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.base import ContentFile  # noqa: PLC0415
    from django.core.files.storage import FileSystemStorage  # noqa: PLC0415

    old = os.umask(0o022)  # the usual umask, which alone would give 0644 files
    try:
        storage = FileSystemStorage(location=tmp_path / "private")
        name = storage.save("photos/2027/03/a.png", ContentFile(b"\x89PNG"))
    finally:
        os.umask(old)
    stored = tmp_path / "private" / name
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700


def test_the_deploy_checks_warn_while_messages_are_written_out_instead_of_sent(settings) -> None:  # type: ignore[no-untyped-def]
    from microneedling.config.checks import health_data_deploy_checks  # noqa: PLC0415

    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "SMS_BACKEND": "console"}
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    warned = {problem.id for problem in health_data_deploy_checks()}
    assert {"mn.W002", "mn.W003"} <= warned
    settings.MICRONEEDLING = {**settings.MICRONEEDLING, "SMS_BACKEND": "webhook"}
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    warned = {problem.id for problem in health_data_deploy_checks()}
    assert not {"mn.W002", "mn.W003"} & warned
