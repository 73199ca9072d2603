"""The first consent text (written for this product, from the knowledge pack's facts)."""

from datetime import date

from django.db import migrations

BODY = """\
I ask for microneedling (collagen induction therapy) on the areas agreed with my provider.

I understand that fine sterile needles make tiny punctures so that the skin renews itself, \
that numbing cream is used first, and that the needles used on me are new and used once.

I have been told what to expect: redness, warmth and mild swelling for a few days, dryness \
and flaking within the first week, and a short time when my skin burns more easily. Less \
often there may be bruising, small spots or itching. Rarely there may be infection, a cold \
sore flare, lasting dark patches (more likely in darker skin) or marks from the needles.

I have answered the health questions truthfully and will tell the clinic about any change \
before each session. I will follow the aftercare I am given and report how my skin heals.

Results differ from person to person and build over months; more than one session is \
usually needed. I may withdraw this consent at any time before a session.
"""


def add(apps, schema_editor):  # type: ignore[no-untyped-def]
    text = apps.get_model("charting", "ConsentText")
    text.objects.get_or_create(
        version="1",
        defaults={
            "title": "Consent to microneedling",
            "body": BODY,
            "active_from": date(2026, 1, 1),
        },
    )


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("charting", "ConsentText").objects.filter(version="1").delete()


class Migration(migrations.Migration):
    dependencies = [("charting", "0001_initial")]

    operations = [migrations.RunPython(add, remove)]
