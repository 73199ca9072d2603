"""Staff accounts, their authenticators and sign-in lock-outs in the admin site, each kept
to one's own organisation, and who may enter the admin site at all."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from microneedling.accounts.access import Can, may
from microneedling.accounts.admin_scope import OrganizationScoped
from microneedling.accounts.models import ApiToken, StaffMember
from microneedling.accounts.services import api_token_revoke
from microneedling.core.errors import InputError


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


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationScoped, admin.ModelAdmin[ApiToken]):
    """The staff's API tokens: who holds one, since when, until when, and stopping them.

    Tokens are issued by ``microneedling token`` (the secret is shown once, to whoever runs
    it); here they are only listed and revoked. Rows are never deleted, so the list keeps
    which token an old request in the audit trail came with. Only digests are stored, and
    none is shown.
    """

    list_display = ("id", "user", "label", "created_at", "expires_at", "revoked_at", "state")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("user__username", "label")
    fields = ("user", "label", "created_at", "expires_at", "revoked_at")
    readonly_fields = fields
    actions = ("revoke",)

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        """Whether the token still works."""
        if token.revoked_at is not None:
            return "revoked"
        if token.expires_at is not None and token.expires_at <= timezone.now():
            return "expired"
        return "working"

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Issued from the command line only, where the secret can be shown once."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        """Nothing about a token is edited; it is revoked (the action below)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        """Kept, revoked, so the audit trail's references to it stay readable."""
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Whoever may see the organisation's tokens may stop them."""
        return self.has_view_permission(request)

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        """Stop each selected token at once, audited as the command line's revocation is."""
        stopped = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            try:
                stopped += api_token_revoke(user=token.user, actor=request.user, token_id=token.pk)
            except InputError:
                continue  # stopped a moment ago by someone else: nothing left to do
        self.message_user(request, f"{stopped} token(s) no longer work.", messages.SUCCESS)


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
