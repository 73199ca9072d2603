"""Dates, times and ids the JSON API accepts: aware, within years a clinic books in, and
ids a database can hold.

A datetime without a zone is refused (which wall clock would it be?), and so is one far
outside the calendar a clinic works with (year 1 or 9999 cannot be booked, and date
arithmetic near them overflows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


def _within_years(moment: datetime) -> datetime:
    if not EARLIEST <= moment.date() <= LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return moment


#: A calendar day between 2000 and 2100.
ClinicDate = Annotated[date, Field(ge=EARLIEST, le=LATEST)]
#: An instant with its UTC offset, between 2000 and 2100.
ClinicDateTime = Annotated[AwareDatetime, AfterValidator(_within_years)]
#: A record's id: positive and within the databases' 64-bit integers (a larger number
#: cannot name a record, and would overflow the query instead of finding nothing).
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]
