"""Break-glass: a member of staff opens one record outside their locations, with a reason."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from microneedling.accounts.access import AccessDenied, Can
from microneedling.accounts.services import break_glass_open
from microneedling.core.errors import InputError
from microneedling.desk.access import requires


@requires(Can.BREAK_GLASS)
@require_POST
def break_glass(request: HttpRequest, patient_id: int) -> HttpResponse:
    """Grant the access (audited with the reason), then go back to the page that refused."""
    try:
        grant = break_glass_open(
            user=request.user,  # type: ignore[arg-type]
            patient_id=patient_id,
            reason=request.POST.get("reason", ""),
        )
    except InputError as error:
        messages.error(request, f"Not opened: {error.problem}.")
    except AccessDenied:
        return render(request, "desk/forbidden.html", status=403)
    else:
        messages.warning(
            request,
            f"Opened until {grant.expires_at:%H:%M} UTC; this access is in the audit trail.",
        )
    back = request.POST.get("next", "")
    return redirect(back if back.startswith("/desk/") else "desk:home")
