"""The desk's dead-letter list: messages that could not be delivered after every retry."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from microneedling.accounts.access import Can, patients_visible
from microneedling.audit.services import audit_patients_listed
from microneedling.desk.access import requires
from microneedling.notifications.delivery import message_retry
from microneedling.notifications.kinds import KINDS
from microneedling.notifications.models import Message


@requires(Can.CONTACT)
def dead_messages(request: HttpRequest) -> HttpResponse:
    """Messages to the user's patients that gave up, newest first, with why and a way to
    send them again; each patient listed is an audited view (the page shows their name and
    what the message was about)."""
    dead = list(
        dead_messages_of(request.user).select_related("patient").order_by("-created_at")[:200]
    )
    audit_patients_listed(
        actor=request.user, action="dead_messages_view", rows=dead, what="messages"
    )
    rows = [(m, KINDS[m.kind].subject) for m in dead]
    return render(request, "desk/dead_messages.html", {"rows": rows})


def dead_messages_of(user: object) -> QuerySet[Message]:
    """Undelivered messages to the patients ``user`` may see (no one else's)."""
    return Message.objects.filter(status=Message.Status.DEAD, patient__in=patients_visible(user))


@requires(Can.CONTACT)
@require_POST
def dead_message_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    """Send one dead message again from its first attempt, or withdraw it when it is stale
    (audited either way); the page says which."""
    # Another scope's message answers as a missing one: ids must not reveal patients.
    message = get_object_or_404(dead_messages_of(request.user), pk=message_id)
    message = message_retry(message=message, actor=request.user)
    if message.status == Message.Status.CANCELLED:
        messages.info(
            request,
            f"The message was withdrawn, not sent again: {message.last_error}.",
        )
    else:
        messages.success(request, "The message will be sent again.")
    return redirect("desk:dead_messages")
