"""Providers' private calendar addresses, issued and revoked by staff."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from microneedling.accounts.access import Can, providers_usable
from microneedling.desk.access import requires
from microneedling.notifications.feeds import calendar_feed_issue, calendar_feed_revoke
from microneedling.notifications.models import CalendarFeed


@requires(Can.SCHEDULE)
def provider_calendars(request: HttpRequest) -> HttpResponse:
    """The active providers one schedules for, and whether a calendar address works for
    them; a provider who has left is listed while an address of theirs is unrevoked, so it
    can be stopped for good."""
    live = set(
        CalendarFeed.objects.filter(provider__isnull=False, revoked_at__isnull=True).values_list(
            "provider_id", flat=True
        )
    )
    providers = (
        providers_usable(request.user)
        .filter(Q(active=True) | Q(pk__in=live))
        .order_by("display_name")
    )
    rows = [(p, p.pk in live) for p in providers]
    return render(request, "desk/provider_calendars.html", {"rows": rows})


@requires(Can.SCHEDULE)
@require_http_methods(["POST"])
def provider_calendar(request: HttpRequest, provider_id: int) -> HttpResponse:
    """Issue (shown once) or stop a provider's calendar address."""
    # Only a provider one schedules for: a feed shows where and when they work.
    provider = get_object_or_404(providers_usable(request.user), pk=provider_id)
    if request.POST.get("action") == "revoke":
        for feed in CalendarFeed.objects.filter(provider=provider, revoked_at__isnull=True):
            calendar_feed_revoke(feed=feed, actor=request.user)
        messages.success(request, f"{provider.display_name}'s calendar address no longer works.")
        return redirect("desk:provider_calendars")
    if not provider.active:
        messages.error(request, f"{provider.display_name} no longer works here: no new address.")
        return redirect("desk:provider_calendars")
    token = calendar_feed_issue(actor=request.user, provider=provider)
    url = request.build_absolute_uri(reverse("calendar:feed", args=[token]))
    return render(
        request, "desk/provider_calendar_issued.html", {"provider": provider, "feed_url": url}
    )
