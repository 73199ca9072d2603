"""The patient's page routes."""

from django.urls import path

from microneedling.accounts import two_factor
from microneedling.aftercare import views as care
from microneedling.portal import contact, courses, password_reset, record, views

app_name = "portal"
urlpatterns = [
    path("sign-up/", views.sign_up, name="sign_up"),
    path("sign-up/sent/", views.sign_up_sent, name="sign_up_sent"),
    path("sign-up/<uidb64>/<token>/", views.sign_up_confirm, name="sign_up_confirm"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("password-reset/", password_reset.password_reset, name="password_reset"),
    path("password-reset/sent/", password_reset.password_reset_sent, name="password_reset_sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        password_reset.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        password_reset.password_reset_complete,
        name="password_reset_complete",
    ),
    path("two-factor/", two_factor.two_factor, name="two_factor"),
    path("two-factor/setup/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("", views.home, name="home"),
    path("messages/", contact.contact, name="contact"),
    path("calendar/new/", contact.feed_issue, name="feed_issue"),
    path("calendar/stop/", contact.feed_revoke, name="feed_revoke"),
    path("visits/<int:appointment_id>/calendar.ics", contact.visit_calendar, name="visit_calendar"),
    path("record/", record.access_log, name="record"),
    path("record/my-record.pdf", record.record_pdf_download, name="record_pdf"),
    path("record/my-record.fhir.json", record.record_fhir_download, name="record_fhir"),
    path("record/close/", record.close_account, name="close_account"),
    path("intake/", views.intake, name="intake"),
    path("consent/", views.consent, name="consent"),
    path("screenings/<int:screening_id>/", views.screening, name="screening"),
    path("course/plan/", courses.course_plan, name="course_plan"),
    path("courses/<int:course_id>/", courses.course_detail, name="course"),
    path("visits/<int:appointment_id>/move/", courses.session_move, name="session_move"),
    path("visits/<int:appointment_id>/cancel/", courses.session_cancel, name="session_cancel"),
    path("visits/<int:appointment_id>/care/", care.visit_care, name="visit_care"),
    path("visits/<int:appointment_id>/skin/", care.skin_report, name="skin_report"),
    path("skin-reports/<int:report_id>/", care.skin_report_result, name="skin_report_result"),
]
