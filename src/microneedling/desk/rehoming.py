"""The desk's chain operations: close a location or move a provider, preview every move,
watch the progress, then apply; every move as CSV."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from microneedling.accounts.access import Can, locations_usable, providers_usable
from microneedling.audit.services import audit_record
from microneedling.core.errors import BookingRefused
from microneedling.desk.access import requires
from microneedling.directory.models import Location, Provider
from microneedling.portal.forms import DateInput
from microneedling.scheduling.models import RehomingRun
from microneedling.scheduling.rehoming import (
    move_destination_check,
    provider_move_reach,
    rehoming_dates_check,
    rehoming_report_audit,
    report_csv,
)
from microneedling.scheduling.rehoming_runs import rehoming_run_start, run_progress

#: Moves listed on the page; the CSV has them all.
SHOWN_MOVES = 200


class RehomingForm(forms.Form):
    """What to do, to whom, from when."""

    operation = forms.ChoiceField(
        label="Operation", choices=RehomingRun.Operation.choices, widget=forms.RadioSelect
    )
    location = forms.ModelChoiceField(
        label="Location (the one closing, or the provider's new one)",
        queryset=Location.objects.none(),
    )
    provider = forms.ModelChoiceField(
        label="Provider (when moving a provider)",
        queryset=Provider.objects.none(),
        required=False,
    )
    from_date = forms.DateField(label="From", widget=DateInput)
    until = forms.DateField(
        label="Until (last closed day, for a temporary closure)",
        widget=DateInput,
        required=False,
    )

    def __init__(self, *args: Any, user: object, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # Only what the user runs: a clinic admin closes their own locations, never
        # another's, and no one reaches into another organisation.
        self.fields["location"].queryset = (  # type: ignore[attr-defined]
            locations_usable(user).exclude(status=Location.Status.CLOSED).order_by("name")
        )
        self.fields["provider"].queryset = (  # type: ignore[attr-defined]
            providers_usable(user).filter(active=True).order_by("display_name")
        )

    def clean(self) -> dict[str, Any]:
        """A provider for a move; an end after the start; no end for a move."""
        data = super().clean() or {}
        operation = data.get("operation")
        if operation == RehomingRun.Operation.MOVE_PROVIDER:
            if not data.get("provider"):
                self.add_error("provider", "Choose the provider who moves.")
            if data.get("until"):
                self.add_error("until", "A provider's move has no end date.")
            if data.get("location") and data.get("from_date"):
                try:
                    move_destination_check(
                        to_location=data["location"], from_date=data["from_date"]
                    )
                except BookingRefused as refused:
                    self.add_error("location", refused.message)
            if data.get("provider") and data.get("location") and data.get("from_date"):
                refusal = move_beyond_reach(
                    self.user, data["provider"], data["location"], data["from_date"]
                )
                if refusal:
                    self.add_error("provider", refusal)
        until, start = data.get("until"), data.get("from_date")
        if until and start and until < start:
            self.add_error("until", "The closure must end on or after its first day.")
        if start:
            # Today where the location is, as the operation itself counts it.
            zone = ZoneInfo(data["location"].timezone) if data.get("location") else None
            today = timezone.localdate(timezone=zone)
            try:
                rehoming_dates_check(from_date=start, until=until, today=today)
            except BookingRefused as refused:
                self.add_error(refused.field, refused.message)
        return data


def move_beyond_reach(
    user: Any, provider: Provider, to_location: Location, from_date: date
) -> str | None:
    """Why ``user`` may not move ``provider`` (they also work at, or have visits at, a
    location ``user`` does not run), or None when they may."""
    reach = provider_move_reach(
        provider=provider, to_location=to_location, from_date=from_date, now=timezone.now()
    )
    beyond = Location.objects.filter(pk__in=reach).exclude(pk__in=locations_usable(user))
    names = ", ".join(beyond.order_by("name").values_list("name", flat=True))
    if not names:
        return None
    return (
        f"{provider.display_name} also works at {names}, which you do not run; "
        "a chain operator moves providers who are shared between locations."
    )


def runs_of(user: object) -> QuerySet[RehomingRun]:
    """Runs on a location ``user`` may use, and (a provider's move) of a provider they
    schedule for: another scope's run answers as a missing one."""
    return RehomingRun.objects.filter(location__in=locations_usable(user)).filter(
        Q(provider__isnull=True) | Q(provider__in=providers_usable(user))
    )


def _audit_report_view(request: HttpRequest, run: RehomingRun, *, moves_shown: int) -> None:
    # A report lists the patients it moves, by name: reading it is audited like a record,
    # once for the run and once for each patient shown (every one in the CSV, the first
    # ``moves_shown`` moves and every stuck visit on the page).
    # (The polling progress fragment shows counts only, so it is not.)
    if request.headers.get("HX-Request"):
        return
    audit_record(
        actor=request.user,
        action="rehoming_report_view",
        object_type="rehoming_run",
        object_id=run.pk,
        details={"moves": len(run.report.get("moves", []))},
    )
    shown = [m["appointment"] for m in run.report.get("moves", [])[:moves_shown]]
    shown += [s["appointment"] for s in run.report.get("stuck_visits", [])]
    rehoming_report_audit(
        actor=request.user, appointment_ids=shown, details={"rehoming_run": run.pk}
    )


@requires(Can.CLOSURES)
@require_http_methods(["GET", "POST"])
def rehoming_start(request: HttpRequest) -> HttpResponse:
    """Start a preview run (nothing changes until it is applied)."""
    form = RehomingForm(request.POST if request.method == "POST" else None, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        run = rehoming_run_start(
            operation=data["operation"],
            actor=request.user,
            apply=False,
            location=data["location"],
            provider=data["provider"],
            from_date=data["from_date"],
            until=data["until"],
        )
        return redirect("desk:rehoming_run", run_id=run.pk)
    recent = runs_of(request.user).select_related("location", "provider").order_by("-created_at")
    return render(request, "desk/rehoming.html", {"form": form, "runs": recent[:10]})


@requires(Can.CLOSURES)
def rehoming_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run's progress while it runs (the page polls), its report when done."""
    run = get_object_or_404(runs_of(request.user).select_related("location", "provider"), pk=run_id)
    _audit_report_view(request, run, moves_shown=SHOWN_MOVES)
    template = "desk/_rehoming_progress.html" if request.headers.get("HX-Request") else None
    context = {
        "run": run,
        "progress": run_progress(run.pk),
        "moves": run.report.get("moves", [])[:SHOWN_MOVES],
        "stuck": run.report.get("stuck_visits", []),
    }
    return render(request, template or "desk/rehoming_run.html", context)


@requires(Can.CLOSURES)
@require_POST
def rehoming_apply(request: HttpRequest, run_id: int) -> HttpResponse:
    """Apply what a finished preview showed (planned again against the diary as it is now)."""
    preview = get_object_or_404(
        runs_of(request.user).select_related("location", "provider"),
        pk=run_id,
        apply=False,
        status="done",
    )
    if preview.provider is not None and preview.location is not None:
        # Checked again: the provider may have been given hours elsewhere since the preview.
        refusal = move_beyond_reach(
            request.user, preview.provider, preview.location, preview.from_date
        )
        if refusal:
            messages.error(request, f"Not applied: {refusal}")
            return redirect("desk:rehoming_run", run_id=preview.pk)
    run = rehoming_run_start(
        operation=preview.operation,
        actor=request.user,
        apply=True,
        location=preview.location,
        provider=preview.provider,
        from_date=preview.from_date,
        until=preview.until,
    )
    return redirect("desk:rehoming_run", run_id=run.pk)


@requires(Can.CLOSURES)
def rehoming_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    """Every move and stuck visit of a finished run as CSV."""
    run = get_object_or_404(runs_of(request.user), pk=run_id, status="done")
    _audit_report_view(request, run, moves_shown=len(run.report.get("moves", [])))
    response = HttpResponse(report_csv(run.report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rehoming-{run.pk}.csv"'
    return response
