"""A patient's whole record as a PDF they can keep or take to another clinic."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF

from microneedling.aftercare.models import SkinReport
from microneedling.charting.models import Consent, OutcomeScore, ProcedureChart
from microneedling.patients.models import Patient
from microneedling.scheduling.models import Appointment


def _latin(text: object) -> str:
    # The PDF's built-in fonts hold Latin-1 only. A letter Latin-1 has ("ë", "ñ") is kept
    # whole; any other is folded to its base letter ("ő" to "o"), and what has none is marked
    # rather than failing to give the patient their record.
    return "".join(_latin_letter(c) for c in str(text))


def _latin_letter(letter: str) -> str:
    if ord(letter) < 256:
        return letter
    base = "".join(
        part for part in unicodedata.normalize("NFKD", letter) if not unicodedata.combining(part)
    )
    return base.encode("latin-1", "replace").decode("latin-1") or "?"


class _Record(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.record_title = title
        self.set_auto_page_break(auto=True, margin=15)
        # Uncompressed: a few kilobytes of text, searchable by any tool the patient has.
        self.set_compression(False)
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, _latin(f"{self.record_title} - page {self.page_no()}"), align="C")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.set_font("Helvetica", style="B", size=12)
        self.cell(0, 8, _latin(text), new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", size=10)

    def lines(self, rows: Iterable[str], empty: str) -> None:
        written = False
        for row in rows:
            self.multi_cell(0, 5, _latin(row), new_x="LMARGIN", new_y="NEXT")
            written = True
        if not written:
            self.multi_cell(0, 5, _latin(empty), new_x="LMARGIN", new_y="NEXT")


def record_pdf(patient: Patient, *, now: datetime) -> bytes:
    """Everything the clinic holds about ``patient`` but the photos, as PDF bytes; times in
    the patient's own zone."""
    zone = ZoneInfo(patient.timezone)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%d %b %Y %H:%M") if moment else ""

    pdf = _Record(f"Record of {patient.first_name} {patient.last_name}")
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 10, _latin(pdf.record_title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.lines(
        [
            f"Born {patient.birth_date:%d %b %Y}; e-mail {patient.email}"
            + (f"; phone {patient.phone}" if patient.phone else ""),
            f"Skin type (Fitzpatrick): {patient.fitzpatrick_type or 'not recorded'}",
            f"Made on {when(now)} ({patient.timezone}).",
        ],
        "",
    )
    pdf.heading("Screenings")
    pdf.lines(
        (
            f"{when(s.created_at)}: {s.get_verdict_display()}"
            + (f"; reviewed: {s.get_review_display()}" if s.review != "not_needed" else "")
            + (f" ({s.review_reason})" if s.review_reason else "")
            for s in patient.screenings.order_by("created_at")
        ),
        "No screening on record.",
    )
    visits = Appointment.objects.filter(patient=patient).select_related(
        "location", "provider", "service"
    )
    pdf.heading("Visits")
    pdf.lines(
        (
            f"{when(v.starts_at)}: {v.service.name} at {v.location.name} with "
            f"{v.provider.display_name} - {v.get_status_display()}"
            for v in visits.order_by("starts_at")
        ),
        "No visit on record.",
    )
    pdf.heading("Procedure charts (signed)")
    charts = ProcedureChart.objects.filter(
        appointment__patient=patient, signed_at__isnull=False
    ).select_related("device", "appointment")
    pdf.lines(
        (
            f"{when(c.appointment.starts_at)}: {c.device}; "
            + ", ".join(
                f"{a.get('area')} {a.get('depth_mm')} mm x{a.get('passes')}" for a in c.areas
            )
            + f"; numbing {c.numbing_product} {c.numbing_minutes} min; "
            f"end point {c.get_endpoint_display()}"
            + (f"; reaction: {c.immediate_reaction}" if c.immediate_reaction else "")
            for c in charts.order_by("appointment__starts_at", "pk")
        ),
        "No signed chart on record.",
    )
    pdf.heading("Outcome scores")
    pdf.lines(
        (
            f"{when(s.recorded_at)}: {s.scale} = {s.value}" + (f" ({s.notes})" if s.notes else "")
            for s in OutcomeScore.objects.filter(appointment__patient=patient).order_by(
                "recorded_at"
            )
        ),
        "No score on record.",
    )
    pdf.heading("Skin reports after treatment")
    pdf.lines(
        (
            f"{when(r.created_at)} (day {r.day}): {r.get_action_display()}, "
            f"{r.get_status_display()}" + (f"; {r.notes}" if r.notes else "")
            for r in SkinReport.objects.filter(patient=patient).order_by("created_at")
        ),
        "No skin report on record.",
    )
    pdf.heading("Consents")
    pdf.lines(
        (
            f"{when(c.signed_at)}: {c.text.title} (version {c.text.version}), signed {c.signature}"
            for c in Consent.objects.filter(patient=patient).select_related("text")
        ),
        "No consent on record.",
    )
    return bytes(pdf.output())
