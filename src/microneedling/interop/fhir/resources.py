"""The clinic's records as FHIR R4 resources (JSON-ready dicts).

Each builder takes one row (with the relations its caller selected) and returns one
resource. Codes come from FHIR's own value sets where one exists; the clinic's own words
(a scale, a treatment area, a symptom) travel as ``text`` with a local coding system.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from microneedling.aftercare.models import SkinReport
from microneedling.charting.models import Consent, OutcomeScore, ProcedureChart
from microneedling.core.knowledge import load_pack
from microneedling.directory.models import (
    Location,
    Organization,
    Provider,
    ProviderSchedule,
    Service,
)
from microneedling.patients.models import Patient, Screening
from microneedling.scheduling.models import Appointment, Course

LOCAL = "https://microneedling.clinic/fhir/CodeSystem"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
APPOINTMENT_STATUS = {
    "requested": "proposed",
    "booked": "booked",
    "checked_in": "checked-in",
    "in_progress": "arrived",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
    "entered_in_error": "entered-in-error",
}
STATUS_FROM_FHIR = {fhir: ours for ours, fhir in APPOINTMENT_STATUS.items()}
#: A course's status as CarePlan.status (FHIR R4 request-status). A restarted course was
#: stopped before its end and replaced by a new one: for FHIR it was revoked, like a
#: cancelled one.
CAREPLAN_STATUS = {
    "active": "active",
    "complete": "completed",
    "cancelled": "revoked",
    "restarted": "revoked",
}
SESSION_STATUS = {
    "planned": "scheduled",
    "booked": "scheduled",
    "done": "completed",
    "missed": "not-started",
    "cancelled": "cancelled",
}


def ref(kind: str, pk: object, display: str | None = None) -> dict[str, Any]:
    """A FHIR reference to one of our resources."""
    reference: dict[str, Any] = {"reference": f"{kind}/{pk}"}
    if display:
        reference["display"] = display
    return reference


def instant(moment: datetime) -> str:
    """An aware datetime as FHIR ``instant`` / ``dateTime`` text."""
    return moment.isoformat()


def day(value: date) -> str:
    """A date as FHIR ``date`` text."""
    return value.isoformat()


def organization(org: Organization) -> dict[str, Any]:
    """Organization: the clinic or chain."""
    return {"resourceType": "Organization", "id": str(org.pk), "active": True, "name": org.name}


def location(place: Location) -> dict[str, Any]:
    """Location: a clinic site with its address, position and opening hours."""
    status = {"open": "active", "closing": "active", "closed": "inactive"}[place.status]
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": str(place.pk),
        "status": status,
        "name": place.name,
        "mode": "instance",
        "address": {
            "line": [place.address],
            "city": place.city,
            "state": place.region,
            "postalCode": place.zip_code,
            "country": "US",
        },
        "position": {"latitude": place.latitude, "longitude": place.longitude},
        "managingOrganization": ref("Organization", place.organization_id),
        "hoursOfOperation": [
            {
                "daysOfWeek": [WEEKDAYS[hours.weekday]],
                "openingTime": hours.opens.isoformat(),
                "closingTime": hours.closes.isoformat(),
            }
            for hours in place.hours.all()
        ],
    }
    if place.phone:
        resource["telecom"] = [{"system": "phone", "value": place.phone}]
    if place.status != "open" and place.closes_on:
        resource["description"] = f"Closes on {place.closes_on.isoformat()}"
    return resource


def practitioner(provider: Provider) -> dict[str, Any]:
    """Practitioner: a provider (no personal contact details)."""
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(provider.pk),
        "active": provider.active,
        "name": [{"text": provider.display_name}],
    }
    if provider.qualifications:
        resource["qualification"] = [{"code": {"text": str(q)}} for q in provider.qualifications]
    return resource


def practitioner_role(
    provider: Provider, place: Location, hours: list[ProviderSchedule]
) -> dict[str, Any]:
    """PractitionerRole: a provider working at a location, with their weekly hours."""
    return {
        "resourceType": "PractitionerRole",
        "id": f"{provider.pk}-{place.pk}",
        "active": provider.active,
        "practitioner": ref("Practitioner", provider.pk, provider.display_name),
        "organization": ref("Organization", provider.organization_id),
        "location": [ref("Location", place.pk, place.name)],
        "code": [{"text": provider.get_role_display()}],
        "availableTime": [
            {
                "daysOfWeek": [WEEKDAYS[h.weekday]],
                "availableStartTime": h.starts.isoformat(),
                "availableEndTime": h.ends.isoformat(),
            }
            for h in hours
        ],
    }


def healthcare_service(service: Service) -> dict[str, Any]:
    """HealthcareService: something a patient can book."""
    return {
        "resourceType": "HealthcareService",
        "id": str(service.pk),
        "active": service.active,
        "providedBy": ref("Organization", service.organization_id),
        "name": service.name,
        "category": [{"coding": [{"system": f"{LOCAL}/service-kind", "code": service.kind}]}],
    }


def schedule(provider: Provider, place: Location) -> dict[str, Any]:
    """Schedule: a provider's diary at a location (the Slots come from it)."""
    return {
        "resourceType": "Schedule",
        "id": f"{provider.pk}-{place.pk}",
        "active": provider.active and place.status != "closed",
        "actor": [
            ref("Practitioner", provider.pk, provider.display_name),
            ref("Location", place.pk, place.name),
        ],
    }


def slot(
    slot_id: str, schedule_id: str, service: Service, start: datetime, end: datetime
) -> dict[str, Any]:
    """Slot: a free start time for a service in a schedule."""
    return {
        "resourceType": "Slot",
        "id": slot_id,
        "schedule": ref("Schedule", schedule_id),
        "status": "free",
        "start": instant(start),
        "end": instant(end),
        "serviceType": [{"text": service.name}],
    }


def patient(person: Patient) -> dict[str, Any]:
    """Patient."""
    telecom = [{"system": "email", "value": person.email}]
    if person.phone:
        telecom.append({"system": "phone", "value": person.phone, "use": "mobile"})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(person.pk),
        # A closed account's record is kept, read-only, for the law: no longer in use.
        "active": person.closed_at is None,
        "name": [{"family": person.last_name, "given": [person.first_name]}],
        "telecom": telecom,
        "birthDate": day(person.birth_date),
        "managingOrganization": ref("Organization", person.organization_id),
    }
    if person.zip_code:
        resource["address"] = [{"postalCode": person.zip_code, "country": "US"}]
    return resource


def appointment(visit: Appointment) -> dict[str, Any]:
    """Appointment: a visit, with the patient, provider and location taking part."""
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(visit.pk),
        "status": APPOINTMENT_STATUS[visit.status],
        "serviceType": [{"text": visit.service.name}],
        "start": instant(visit.starts_at),
        "end": instant(visit.ends_at),
        "created": instant(visit.created_at),
        "participant": [
            {"actor": ref("Patient", visit.patient_id), "status": "accepted"},
            {
                "actor": ref("Practitioner", visit.provider_id, visit.provider.display_name),
                "status": "accepted",
            },
            {
                "actor": ref("Location", visit.location_id, visit.location.name),
                "status": "accepted",
            },
        ],
    }
    if visit.course_session_id is not None:
        session = visit.course_session
        resource["description"] = f"Session {session.number} of a course"  # type: ignore[union-attr]
        resource["supportingInformation"] = [ref("CarePlan", session.course_id)]  # type: ignore[union-attr]
    return resource


def care_plan(course: Course) -> dict[str, Any]:
    """CarePlan: a course, each session with its window and its visit."""
    activities = []
    for session in course.sessions.all():
        visits = [a for a in session.appointments.all() if a.status != "entered_in_error"]
        activity: dict[str, Any] = {
            "detail": {
                "kind": "Appointment",
                "status": SESSION_STATUS[session.status],
                "description": f"Session {session.number}",
                "scheduledPeriod": {"start": day(session.earliest), "end": day(session.latest)},
            }
        }
        if visits:
            activity["outcomeReference"] = [ref("Appointment", v.pk) for v in visits]
        activities.append(activity)
    return {
        "resourceType": "CarePlan",
        "id": str(course.pk),
        "status": CAREPLAN_STATUS.get(course.status, "unknown"),
        "intent": "plan",
        "title": f"{course.sessions_total}-session microneedling course",
        "description": "Indications: " + ", ".join(course.indications),
        "subject": ref("Patient", course.patient_id),
        "created": instant(course.created_at),
        "activity": activities,
    }


def procedure(chart: ProcedureChart) -> dict[str, Any]:
    """Procedure: a signed (or draft) chart of one session."""
    areas = load_pack().areas
    visit = chart.appointment
    notes = [
        f"Numbing: {chart.numbing_product}, {chart.numbing_minutes} min",
        f"Cartridge lot {chart.cartridge_lot.lot_number}",
        f"Endpoint: {chart.get_endpoint_display()}",
    ] + [
        f"{areas[a['area']].name if a['area'] in areas else a['area']}: "
        f"{a['depth_mm']} mm, {a['passes']} passes"
        for a in chart.areas
    ]
    notes += [
        f"Applied: {p['product']}" + ("" if p.get("sterile") else " (not sterile)")
        for p in chart.products
    ]
    if chart.notes:
        notes.append(chart.notes)
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(chart.pk),
        "status": "completed" if chart.signed_at else "in-progress",
        "code": {"text": "Collagen induction therapy (microneedling)"},
        "subject": ref("Patient", visit.patient_id),
        "performedDateTime": instant(visit.starts_at),
        "performer": [{"actor": ref("Practitioner", visit.provider_id)}],
        "location": ref("Location", visit.location_id),
        "bodySite": [
            {
                "coding": [{"system": f"{LOCAL}/area", "code": a["area"]}],
                "text": areas[a["area"]].name if a["area"] in areas else a["area"],
            }
            for a in chart.areas
        ],
        "focalDevice": [
            {
                "action": {"text": "used"},
                "manipulated": {"display": f"{chart.device.name} ({chart.device.model})"},
            }
        ],
        "note": [{"text": text} for text in notes],
    }
    if chart.immediate_reaction:
        resource["complication"] = [{"text": chart.immediate_reaction}]
    if chart.amends_id:
        resource["partOf"] = [ref("Procedure", chart.amends_id)]
    return resource


def questionnaire_response(screening: Screening) -> dict[str, Any]:
    """QuestionnaireResponse: the intake as answered, one item per top-level answer."""
    items = []
    for key, value in screening.intake.items():
        answer: dict[str, Any]
        if isinstance(value, bool):
            answer = {"valueBoolean": value}
        elif isinstance(value, int):
            answer = {"valueInteger": value}
        elif isinstance(value, str):
            answer = {"valueString": value}
        elif isinstance(value, list) and not value:
            continue
        else:
            answer = {"valueString": _flat(value)}
        items.append({"linkId": key, "text": key.replace("_", " "), "answer": [answer]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(screening.pk),
        "status": "completed",
        "subject": ref("Patient", screening.patient_id),
        "authored": instant(screening.created_at),
        "item": items,
    }


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_flat(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flat(v)}" for k, v in value.items() if v not in (None, ""))
    return str(value)


def observation(score: OutcomeScore) -> dict[str, Any]:
    """Observation: an outcome score on one of the pack's scales."""
    scales = {s.code: s for s in load_pack().data.scales}
    scale = scales.get(score.scale)
    visit = score.appointment
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(score.pk),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": f"{LOCAL}/scale", "code": score.scale}],
            "text": scale.name if scale else score.scale,
        },
        "subject": ref("Patient", visit.patient_id),
        "effectiveDateTime": instant(visit.starts_at),
        "issued": instant(score.recorded_at),
        "valueInteger": score.value,
    }
    charts = [ref("Procedure", c.pk) for c in visit.charts.all()]
    if charts:
        resource["partOf"] = charts
    if score.notes:
        resource["note"] = [{"text": score.notes}]
    return resource


def adverse_event(report: SkinReport) -> dict[str, Any]:
    """AdverseEvent: a patient's report of how their skin heals, with its triage."""
    serious = report.action in ("contact_clinic", "urgent")
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": str(report.pk),
        "actuality": "actual",
        "subject": ref("Patient", report.patient_id),
        "date": instant(report.created_at),
        "event": {
            "text": "; ".join(f"{s['code']} ({s.get('severity', 'mild')})" for s in report.symptoms)
        },
        "seriousness": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                    "code": "serious" if serious else "non-serious",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": f"{LOCAL}/triage",
                        "code": report.action,
                    }
                ]
            }
        ],
    }
    charts = [{"instance": ref("Procedure", c.pk)} for c in report.appointment.charts.all()]
    if charts:
        resource["suspectEntity"] = charts
    return resource


def consent(signature: Consent) -> dict[str, Any]:
    """Consent: the patient's signature on one version of the treatment consent."""
    return {
        "resourceType": "Consent",
        "id": str(signature.pk),
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "treatment",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": ref("Patient", signature.patient_id),
        "dateTime": instant(signature.signed_at),
        "policyRule": {"text": f"{signature.text.title}, version {signature.text.version}"},
    }
