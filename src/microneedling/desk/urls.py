"""The desk's routes."""

from django.urls import path

from microneedling.desk import (
    break_glass,
    calendars,
    messages,
    moves,
    queues,
    rehoming,
    views,
    visits,
)

app_name = "desk"
urlpatterns = [
    path("", views.home, name="home"),
    path("skin-reports/", views.skin_reports, name="skin_reports"),
    path("skin-reports/<int:report_id>/", views.skin_report_detail, name="skin_report"),
    path("skin-reports/<int:report_id>/photo/", views.skin_report_photo, name="skin_report_photo"),
    path("locations/<slug:slug>/day/", views.day_sheet_view, name="day_sheet"),
    path("screenings/", queues.screenings, name="screenings"),
    path("screenings/<int:screening_id>/", queues.screening_decide, name="screening"),
    path("requests/", queues.requests_list, name="requests"),
    path("requests/<int:request_id>/close/", queues.request_close, name="request_close"),
    path("rehoming/", rehoming.rehoming_start, name="rehoming"),
    path("rehoming/<int:run_id>/", rehoming.rehoming_run, name="rehoming_run"),
    path("rehoming/<int:run_id>/apply/", rehoming.rehoming_apply, name="rehoming_apply"),
    path("rehoming/<int:run_id>/moves.csv", rehoming.rehoming_csv, name="rehoming_csv"),
    path("calendars/", calendars.provider_calendars, name="provider_calendars"),
    path("calendars/<int:provider_id>/", calendars.provider_calendar, name="provider_calendar"),
    path("messages/dead/", messages.dead_messages, name="dead_messages"),
    path(
        "messages/<int:message_id>/retry/", messages.dead_message_retry, name="dead_message_retry"
    ),
    path("patients/<int:patient_id>/break-glass/", break_glass.break_glass, name="break_glass"),
    path("visits/<int:appointment_id>/", visits.visit, name="visit"),
    path("visits/<int:appointment_id>/status/", visits.visit_status, name="visit_status"),
    path("visits/<int:appointment_id>/move/", moves.visit_move, name="visit_move"),
    path("photos/<int:photo_id>/", visits.session_photo, name="session_photo"),
    path("courses/<int:course_id>/compare/", visits.course_compare, name="course_compare"),
]
