"""App configuration."""

from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """Patients, intakes and screening verdicts."""

    name = "microneedling.patients"
    default_auto_field = "django.db.models.BigAutoField"
