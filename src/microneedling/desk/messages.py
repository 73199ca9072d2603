"""The desk's dead-letter list: messages that could not be delivered after every retry."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from microneedling.accounts.access import Can
from microneedling.desk.access import requires
from microneedling.notifications.delivery import message_retry
from microneedling.notifications.kinds import KINDS
from microneedling.notifications.models import Message


@requires(Can.CONTACT)
def dead_messages(request: HttpRequest) -> HttpResponse:
    """Messages that gave up, newest first, with why and a way to send them again."""
    dead = (
        Message.objects.filter(status=Message.Status.DEAD)
        .select_related("patient")
        .order_by("-created_at")[:200]
    )
    rows = [(m, KINDS[m.kind].subject) for m in dead]
    return render(request, "desk/dead_messages.html", {"rows": rows})


@requires(Can.CONTACT)
@require_POST
def dead_message_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    """Send one dead message again from its first attempt (audited)."""
    message = get_object_or_404(Message, pk=message_id, status=Message.Status.DEAD)
    message_retry(message=message, actor=request.user)
    messages.success(request, "The message will be sent again.")
    return redirect("desk:dead_messages")
