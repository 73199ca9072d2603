"""Background tasks of the notifications app (run by ``microneedling worker``)."""

from __future__ import annotations

from django_tasks import task

from microneedling.notifications.delivery import message_deliver_now


@task(queue_name="messages")
def message_deliver(message_id: int) -> str:
    """Deliver one outbox message (a no-op if it was sent, withdrawn or is held)."""
    return message_deliver_now(message_id)
