"""Writes for patients: signing up (without telling who has an account), recording a
screening and a provider's review of it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from microneedling.accounts.actors import Actor, acting_user
from microneedling.audit.services import audit_record
from microneedling.core.knowledge import load_pack
from microneedling.core.screening import Intake, screen
from microneedling.directory.models import Location
from microneedling.directory.policy import booking_rules
from microneedling.notifications import events
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import AppointmentRequest
from microneedling.scheduling.screening_followup import screening_followup_refresh
from microneedling.scheduling.spacing import patient_lock


def screening_record(*, patient: Patient, intake: Intake, actor: Actor = None) -> Screening:
    """Screen an intake under the clinic's policy and keep the verdict; a relative
    contraindication waits for review. Audited as a change to the patient's record.

    ``actor`` is who entered the intake; left out, it is the patient's own account (the
    portal, where patients answer it themselves)."""
    pack = load_pack()
    result = screen(intake, pack, booking_rules(patient.organization_id).pack_policy)
    review = (
        Screening.Review.PENDING
        if result.verdict == "clinician_review"
        else Screening.Review.NOT_NEEDED
    )
    with transaction.atomic():
        # The patient first, as every writer of their visits and requests locks them: the
        # follow-up below takes this lock, and taking it last could deadlock.
        patient_lock(patient.pk)
        details: dict[str, Any] = {"verdict": result.verdict}
        if patient.fitzpatrick_type != intake.fitzpatrick_type:
            # The latest intake is the truth about the skin type the plans use; the trail
            # keeps what it was, since needle depths follow from it.
            details["skin_type"] = {"from": patient.fitzpatrick_type, "to": intake.fitzpatrick_type}
            patient.fitzpatrick_type = intake.fitzpatrick_type
            patient.save(update_fields=["fitzpatrick_type"])
        screening = Screening.objects.create(
            patient=patient,
            intake=intake.model_dump(mode="json"),
            result=result.to_dict(),
            verdict=result.verdict,
            deferred_until=result.deferred_until,
            pack_version=pack.version,
            review=review,
        )
        audit_record(
            actor=actor if actor is not None else patient.user,
            action="screening_record",
            object_type="patient",
            object_id=patient.pk,
            details={"screening": screening.pk, **details},
        )
        # Medicines started or stopped since a visit was booked change its pauses.
        events.intake_recorded(patient=patient, intake=intake)
        # Visits booked on older answers that these stop go on the desk's list.
        screening_followup_refresh(patient=patient)
    return screening


def screening_review(
    *, screening: Screening, actor: Actor, approve: bool, reason: str
) -> Screening:
    """A provider approves or declines a screening that needs review (audited)."""
    if screening.review != Screening.Review.PENDING:
        raise ValueError("this screening is not waiting for review")
    newest = Screening.objects.filter(patient_id=screening.patient_id).newest_first().first()
    if newest is not None and newest.pk != screening.pk:
        # Booking follows the newest answers only: a decision on older ones would approve
        # (or decline) the requests that wait for the newest, and tell the patient so.
        raise ValueError(
            "the patient has answered the questions again since; decide their newest answers"
        )
    if not reason.strip():
        raise ValueError("a review needs a reason")
    with transaction.atomic():
        # The patient first (see screening_record): the requests updated below are the ones
        # a patient asking again locks the patient to merge into.
        patient_lock(screening.patient_id)
        decided = {
            "review": Screening.Review.APPROVED if approve else Screening.Review.DECLINED,
            "reviewed_by": acting_user(actor),
            "reviewed_at": timezone.now(),
            "review_reason": reason,
        }
        # Only a pending one: two providers deciding at once must not both be recorded.
        if not Screening.objects.filter(pk=screening.pk, review=Screening.Review.PENDING).update(
            **decided
        ):
            raise ValueError("another provider decided this screening a moment ago")
        for name, value in decided.items():
            setattr(screening, name, value)
        # The bookings that waited for this decision: declined with it, or approved so the
        # desk (and the patient, who is told) can book them now.
        AppointmentRequest.objects.filter(
            patient_id=screening.patient_id,
            status=AppointmentRequest.Status.OPEN,
            reason="clinician_review",
        ).update(
            status=(
                AppointmentRequest.Status.APPROVED
                if approve
                else AppointmentRequest.Status.DECLINED
            ),
            decided_at=decided["reviewed_at"],
            decision_reason="screening approved" if approve else "screening declined",
        )
        # Named, so that the decision is in the patient's access log and audit search.
        details: dict[str, Any] = {
            "verdict": screening.verdict,
            "decision": screening.review,
            "patient": screening.patient_id,
        }
        audit_record(
            actor=actor,
            action="screening_review",
            object_type="screening",
            object_id=screening.pk,
            reason=reason,
            details=details,
        )
        events.screening_result(screening)
        screening_followup_refresh(patient=screening.patient)
    return screening


def patient_register(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    birth_date: date,
    location: Location,
    phone: str = "",
    zip_code: str = "",
) -> Patient:
    """Create a patient's sign-in and record together (both or neither), with the chosen
    location's organisation as their clinic. The e-mail address is the user name."""
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(
            username=email.lower(),
            email=email.lower(),
            password=password,
            first_name=first_name,
            last_name=last_name,
        )
        return Patient.objects.create(
            user=user,
            organization_id=location.organization_id,
            first_name=first_name,
            last_name=last_name,
            email=email.lower(),
            phone=phone,
            birth_date=birth_date,
            zip_code=zip_code,
            timezone=location.timezone,
        )


class _SignUpTokens(PasswordResetTokenGenerator):
    """Links that confirm a new account's address: Django's password-reset tokens (signed,
    timed by ``PASSWORD_RESET_TIMEOUT``), salted apart so that one kind never stands in for
    the other, and spent once the account is active."""

    key_salt = "microneedling.patients.services.sign_up"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


sign_up_tokens = _SignUpTokens()


class MailNotSent(Exception):
    """The mail server did not take a sign-up message; nothing the patient did is lost (the
    account waits for its confirmation, and signing up again sends the link again)."""


def _mail(user: Any, template: str, context: dict[str, Any], *, to: str = "") -> None:
    """One plain-text message to ``user`` (at ``to`` if given) from
    ``portal/<template>_subject|email.txt``; :class:`MailNotSent` when the mail server cannot
    be reached or refuses it."""
    context = {"user": user, **context}
    subject = "".join(render_to_string(f"portal/{template}_subject.txt", context).splitlines())
    body = render_to_string(f"portal/{template}_email.txt", context)
    try:
        send_mail(subject, body, None, [to or user.email])
    except OSError as error:  # smtplib's errors are OSErrors, as is a refused connection
        # Said to the person at the form, rather than a 500 or a "check your e-mail" for a
        # message that never left.
        raise MailNotSent(template) from error


def _awaiting_confirmation(user: Any) -> bool:
    """An account made by a sign-up whose address has not been confirmed yet."""
    return (
        not user.is_active
        and user.last_login is None
        and user.has_usable_password()
        and Patient.objects.filter(user=user, closed_at__isnull=True).exists()
    )


def patient_sign_up(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    birth_date: date,
    location: Location,
    site: str,
    confirm_link: Callable[[str, str], str],
) -> None:
    """Start an account; the answer is the same whether or not the address has one, so that
    signing up cannot tell anyone who is a patient here (as the password reset cannot).

    - A new address: the account and record are made, not active yet, and a link to confirm
      the address is mailed (``confirm_link(uidb64, token)`` makes it absolute; see
      ``patient_sign_up_confirm``).
    - An address whose sign-up is not confirmed yet: the link is mailed again; the first
      sign-up's details stay.
    - An address with an account: its holder is told that someone tried, with where to sign
      in and to reset the password (``site`` is the scheme and host). Nothing changes.
    - An address whose account cannot sign in (made inactive by staff): its holder is told
      that someone tried and to ask the clinic. Nothing changes.

    Every case mails the address once (and hashes the password once), so none answers
    differently when the mail server is down.

    The caller shows "check your e-mail" in every case, unless :class:`MailNotSent` says
    the message could not be handed to the mail server.
    """
    email = email.lower()
    existing = get_user_model().objects.filter(username=email).first()
    if existing is None:
        try:
            with transaction.atomic():
                patient = patient_register(
                    email=email,
                    password=password,
                    first_name=first_name,
                    last_name=last_name,
                    birth_date=birth_date,
                    location=location,
                )
                user = patient.user
                user.is_active = False  # type: ignore[union-attr]
                user.save(update_fields=["is_active"])  # type: ignore[union-attr]
        except IntegrityError:
            # Someone signed up with this address a moment ago: answer as for a known one.
            existing = get_user_model().objects.get(username=email)
        else:
            _mail_confirmation(user, confirm_link)
            return
    # Hash the password all the same: a known address must not answer sooner than a new one.
    make_password(password)
    if _awaiting_confirmation(existing):
        _mail_confirmation(existing, confirm_link)
    elif existing.is_active:
        _mail(
            existing,
            "sign_up_known",
            {
                "sign_in": site + reverse("portal:sign_in"),
                "password_reset": site + reverse("portal:password_reset"),
            },
            to=existing.email or email,
        )
    else:
        _mail(existing, "sign_up_inactive", {}, to=existing.email or email)


def _mail_confirmation(user: Any, confirm_link: Callable[[str, str], str]) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    _mail(
        user,
        "sign_up_confirm",
        {
            "link": confirm_link(uid, sign_up_tokens.make_token(user)),
            "hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
        },
    )


def patient_sign_up_confirm(*, uidb64: str, token: str) -> Patient | None:
    """Activate the account a confirmation link was mailed for, and return its patient;
    ``None`` when the link is wrong, too old or spent (the account is active already)."""
    user_model = get_user_model()
    try:
        user = user_model.objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, ValidationError, user_model.DoesNotExist):
        return None
    if user.is_active or not sign_up_tokens.check_token(user, token):
        return None
    patient = Patient.objects.filter(user=user, closed_at__isnull=True).first()
    if patient is None:
        return None
    user.is_active = True
    user.save(update_fields=["is_active"])
    return patient
