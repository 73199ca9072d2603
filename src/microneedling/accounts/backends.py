"""Model permissions for the admin site, decided by ``accounts.access`` from the role."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from microneedling.accounts.access import may_admin


class RoleBackend(BaseBackend):
    """Grants ``app.action_model`` permissions from the user's role; authenticates nobody."""

    def has_perm(self, user_obj: Any, perm: str, obj: object = None) -> bool:
        """``perm`` looks like ``directory.change_location``."""
        app_label, _, codename = perm.partition(".")
        model = codename.partition("_")[2]
        return bool(model) and may_admin(user_obj, app_label, model)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        """Whether the admin shows ``app_label`` at all."""
        return may_admin(user_obj, app_label)
