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
