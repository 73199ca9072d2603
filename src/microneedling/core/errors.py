"""Domain errors raised by the engines; adapters turn them into 422 answers or exit code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Input that the engines cannot accept, with the field it concerns.

    ``field`` is a dotted path into the input (``conditions.0.code``) so that every adapter can
    name the field in its error message without knowing the engine's internals.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PackError(ValueError):
    """The knowledge pack failed validation; the message lists every problem found."""


class BookingConflict(Exception):
    """A booking collides with what is already booked (answered as 409).

    ``resource`` is the resource key that conflicted (``provider:12``) and ``session`` the
    course session number, when known, so the caller can say exactly what to change.
    """

    def __init__(
        self,
        message: str,
        *,
        resource: str | None = None,
        session: int | None = None,
        starts_at: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.session = session
        self.starts_at = starts_at


class BookingRefused(Exception):
    """A booking that the rules forbid (screening, closed location): answered as 422.

    ``code`` is a stable word for clients (``not_eligible``, ``deferred``, ``not_screened``).
    """

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
