"""Forgotten passwords: a link by e-mail, valid once and for a short time (Django's tokens).

The page answers the same whether or not the address has an account, so it cannot be used
to find out who is a patient here; requests are rate-limited per address.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from microneedling.web.security import rate_limit

password_reset = rate_limit("password_reset")(
    auth_views.PasswordResetView.as_view(
        template_name="portal/password_reset.html",
        email_template_name="portal/password_reset_email.txt",
        subject_template_name="portal/password_reset_subject.txt",
        success_url=reverse_lazy("portal:password_reset_sent"),
    )
)
password_reset_sent = auth_views.PasswordResetDoneView.as_view(
    template_name="portal/password_reset_sent.html"
)
password_reset_confirm = rate_limit("password_reset")(
    auth_views.PasswordResetConfirmView.as_view(
        template_name="portal/password_reset_confirm.html",
        success_url=reverse_lazy("portal:password_reset_complete"),
        post_reset_login=False,
    )
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="portal/password_reset_complete.html"
)
