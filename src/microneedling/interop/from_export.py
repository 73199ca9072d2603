"""The import files from a FHIR bulk export (ours, or another system's that exports the same
resources): the documented mapping of ``docs/import.md``, used for the round-trip check."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from microneedling.interop.importer import COLUMNS, OPTIONAL


def _ndjson(folder: Path, type_name: str) -> list[dict[str, Any]]:
    path = folder / f"{type_name}.ndjson"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _csv(name: str, rows: Iterable[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS[name], *OPTIONAL[name]])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _id(reference: str) -> str:
    return reference.rpartition("/")[2]


def csv_from_export(
    folder: Path, *, location_slugs: dict[str, str], after: datetime
) -> dict[str, str]:
    """``patients``, ``providers`` and ``appointments`` CSV text from an export folder.

    ``location_slugs`` maps exported Location ids to the receiving clinic's slugs; only
    booked visits starting after ``after`` are carried over (the importer takes future
    visits only)."""
    patients = [
        {
            "external_id": p["id"],
            "first_name": p["name"][0]["given"][0],
            "last_name": p["name"][0]["family"],
            "email": next(t["value"] for t in p["telecom"] if t["system"] == "email"),
            "birth_date": p["birthDate"],
            "phone": next((t["value"] for t in p["telecom"] if t["system"] == "phone"), ""),
            "zip_code": (p.get("address") or [{}])[0].get("postalCode", ""),
            "timezone": "",
        }
        for p in _ndjson(folder, "Patient")
    ]
    names = {p["id"]: p["name"][0]["text"] for p in _ndjson(folder, "Practitioner")}
    roles = {"Physician": "physician", "Nurse practitioner": "nurse_practitioner"}
    providers = []
    for role in _ndjson(folder, "PractitionerRole"):
        practitioner = _id(role["practitioner"]["reference"])
        slug = location_slugs[_id(role["location"][0]["reference"])]
        by_hours: dict[tuple[str, str], list[str]] = {}
        for available in role["availableTime"]:
            hours = (available["availableStartTime"][:5], available["availableEndTime"][:5])
            by_hours.setdefault(hours, []).extend(available["daysOfWeek"])
        for (starts, ends), days in by_hours.items():
            providers.append(
                {
                    "external_id": practitioner,
                    "display_name": names[practitioner],
                    "role": roles.get(role["code"][0]["text"], "aesthetician"),
                    "location": slug,
                    "weekdays": ",".join(days),
                    "starts": starts,
                    "ends": ends,
                }
            )
    appointments = []
    for visit in _ndjson(folder, "Appointment"):
        if visit["status"] != "booked" or datetime.fromisoformat(visit["start"]) <= after:
            continue
        references = [p["actor"]["reference"] for p in visit["participant"]]
        by_type = {ref.partition("/")[0]: _id(ref) for ref in references}
        appointments.append(
            {
                "external_id": visit["id"],
                "patient": by_type["Patient"],
                "provider": by_type["Practitioner"],
                "location": location_slugs[by_type["Location"]],
                "service": visit["serviceType"][0]["text"],
                "starts_at": visit["start"],
                "status": "booked",
            }
        )
    return {
        "patients": _csv("patients", patients),
        "providers": _csv("providers", providers),
        "appointments": _csv("appointments", appointments),
    }
