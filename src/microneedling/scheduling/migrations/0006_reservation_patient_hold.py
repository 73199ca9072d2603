"""Give every visit that holds time a reservation for its patient (``patient:<id>``, from
check-in to the end), so that one person cannot be booked into two visits at once.

Visits already on the books that overlap another of the same patient's keep their time: the
later one's patient row is marked as an override, as a member of staff would have to mark
it now, so the PostgreSQL no-overlap constraint accepts it and the desk can see it.
"""

from django.db import migrations


def add_patient_holds(apps, schema_editor):  # type: ignore[no-untyped-def]
    Appointment = apps.get_model("scheduling", "Appointment")
    Reservation = apps.get_model("scheduling", "Reservation")
    holding = (
        Appointment.objects.filter(reservations__active=True)
        .distinct()
        .order_by("patient_id", "starts_at", "pk")
    )
    rows = []
    last_end: dict[int, object] = {}
    for visit in holding.iterator(chunk_size=2000):
        first = (
            Reservation.objects.filter(appointment_id=visit.pk).order_by("starts_at", "pk").first()
        )
        previous = last_end.get(visit.patient_id)
        rows.append(
            Reservation(
                appointment_id=visit.pk,
                resource=f"patient:{visit.patient_id}",
                phase=first.phase if first is not None else "",
                starts_at=visit.starts_at,
                ends_at=visit.ends_at,
                overlap_allowed=previous is not None and visit.starts_at < previous,
            )
        )
        if previous is None or visit.ends_at > previous:
            last_end[visit.patient_id] = visit.ends_at
        if len(rows) >= 2000:
            Reservation.objects.bulk_create(rows)
            rows = []
    Reservation.objects.bulk_create(rows)


def remove_patient_holds(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("scheduling", "Reservation").objects.filter(
        resource__startswith="patient:"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0005_rehoming_run")]

    operations = [migrations.RunPython(add_patient_holds, remove_patient_holds)]
