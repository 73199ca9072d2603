"""Aftercare: what to do before and after a session, and the patient's skin reports."""

from django.apps import AppConfig


class AftercareConfig(AppConfig):
    """Care instructions per session and side-effect reports with their triage."""

    name = "microneedling.aftercare"
    label = "aftercare"
