"""What counts as a record number in a URL or a parameter."""

from __future__ import annotations

#: Keys are 64-bit signed integers in both databases: 18 digits always fit.
MAX_ID_DIGITS = 18


def is_record_id(text: str) -> bool:
    """ASCII digits only, short enough for a database key (``"²".isdigit()`` is true, and
    ``int("²")`` fails; a 30-digit number overflows the column)."""
    return text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS
