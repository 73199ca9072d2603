"""The admin's API token page: a chain operator sees their own organisation's staff tokens
(never the digest), revokes them at once with an audit record, and can neither add, edit
nor delete one; the front desk cannot open the page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from microneedling.accounts.models import ApiToken
from microneedling.accounts.services import api_token_issue, api_token_user
from microneedling.audit.models import AuditEvent
from tests.web.conftest import build_clinic, make_staff

pytestmark = pytest.mark.django_db


def _operator_client() -> tuple[Client, object, object]:
    ours = build_clinic()
    theirs = build_clinic(name="Faraway", group="Faraway Group")
    operator = make_staff("operator.a", "chain_operator", organization=ours.org)
    desk = make_staff("desk.a", "front_desk", organization=ours.org)
    far = make_staff("desk.b", "front_desk", organization=theirs.org)
    client = Client()
    client.force_login(operator)
    return client, desk, far


def test_an_operator_lists_only_their_organisations_tokens_and_never_a_digest() -> None:
    client, desk, far = _operator_client()
    api_token_issue(user=desk, label="front laptop")
    api_token_issue(user=far, label="faraway tablet")
    page = client.get(reverse("admin:accounts_apitoken_changelist"))
    assert page.status_code == 200
    listed = page.content.decode()
    assert "front laptop" in listed and "working" in listed
    assert "faraway tablet" not in listed
    for token in ApiToken.objects.all():
        assert token.digest not in listed
    theirs = ApiToken.objects.get(user=far)
    # Another organisation's token answers as missing (the admin sends one back to its index).
    answer = client.get(reverse("admin:accounts_apitoken_change", args=[theirs.pk]))
    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:index")


def test_revoking_in_the_admin_stops_the_token_at_once_and_is_audited() -> None:
    client, desk, far = _operator_client()
    leaked, kept = api_token_issue(user=desk), api_token_issue(user=desk)
    theirs = api_token_issue(user=far)
    leaked_row = ApiToken.objects.filter(user=desk).order_by("pk").first()
    assert leaked_row is not None
    other_row = ApiToken.objects.get(user=far)
    answer = client.post(
        reverse("admin:accounts_apitoken_changelist"),
        {
            "action": "revoke",
            # Another organisation's token smuggled into the selection is not theirs to stop.
            "_selected_action": [str(leaked_row.pk), str(other_row.pk)],
        },
        follow=True,
    )
    assert answer.status_code == 200
    assert "1 token(s) no longer work." in answer.content.decode()
    assert api_token_user(leaked) is None
    assert api_token_user(kept) == desk
    assert api_token_user(theirs) == far
    event = AuditEvent.objects.get(action="api_token_revoke")
    assert event.object_id == str(desk.pk)
    assert event.details == {"tokens": [leaked_row.pk]}
    page = client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    assert "revoked" in page


def test_tokens_are_not_added_edited_or_deleted_in_the_admin() -> None:
    client, desk, _ = _operator_client()
    api_token_issue(user=desk)
    row = ApiToken.objects.get(user=desk)
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    assert client.get(reverse("admin:accounts_apitoken_delete", args=[row.pk])).status_code == 403
    before = row.revoked_at, row.label
    client.post(reverse("admin:accounts_apitoken_change", args=[row.pk]), {"label": "renamed"})
    row.refresh_from_db()
    assert (row.revoked_at, row.label) == before


def test_the_front_desk_cannot_open_the_token_page() -> None:
    _, desk, _ = _operator_client()
    client = Client()
    client.force_login(desk)
    page = reverse("admin:accounts_apitoken_changelist")
    answer = client.get(page)
    # The admin site is not theirs at all: it asks for a sign-in that may use it.
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("admin:login"))
