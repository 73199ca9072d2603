"""Staff accounts, their authenticators and sign-in lock-outs in the admin site, each kept
to one's own organisation, and who may enter the admin site at all."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.http import HttpRequest
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

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
    picks_unclaimed_accounts = True  # a new hire's account is made first, then attached


# The two apps register unscoped admins of their own (importing them above did): a chain
# operator would see and change every organisation's, and superusers', authenticators and
# lock-outs. Each is registered again with the organisation's limits.
for _model, _model_admin in (
    (TOTPDevice, TOTPDeviceAdmin),
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(
        _model, type(f"Scoped{_model_admin.__name__}", (OrganizationScoped, _model_admin), {})
    )
