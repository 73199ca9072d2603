"""A log filter that removes personal data before any handler writes a line.

The code never logs a patient's details on purpose; this catches what frameworks add (a
request's URL with its query string, an e-mail address in an error)."""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"\+?\d[\d ()\-]{7,}\d")
QUERY = re.compile(r"\?[^\s'\"]*")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and URL query strings replaced."""
    text = QUERY.sub("?[query removed]", text)
    text = EMAIL.sub("[email removed]", text)
    return PHONE.sub(_phone_or_not, text)


def _phone_or_not(match: re.Match[str]) -> str:
    # Ten digits or more is a phone number; a timestamp or a record number is not.
    found = match.group()
    if DATE.search(found) or sum(c.isdigit() for c in found) < 10:
        return found
    return "[number removed]"


class RedactPersonalData(logging.Filter):
    """Rewrites each record's message, arguments already applied, before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only its text changes."""
        record.msg = redact(record.getMessage())
        record.args = None
        return True
