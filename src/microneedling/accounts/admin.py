"""Staff accounts in the admin site, and who may enter the admin site at all."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from microneedling.accounts.access import Can, may
from microneedling.accounts.admin_scope import OrganizationScoped
from microneedling.accounts.models import StaffMember


def _admin_allowed(request: HttpRequest) -> bool:
    # Replaces Django's is_staff test: the role decides (accounts.access).
    return bool(request.user.is_active and may(request.user, Can.ADMIN_SITE))


admin.site.has_permission = _admin_allowed  # type: ignore[method-assign]


@admin.register(StaffMember)
class StaffMemberAdmin(OrganizationScoped, admin.ModelAdmin[StaffMember]):
    """Who works where, in which role."""

    list_display = ("user", "role", "organization", "provider")
    list_filter = ("role", ("organization", admin.RelatedOnlyFieldListFilter))
    filter_horizontal = ("locations",)
    raw_id_fields = ("user",)
