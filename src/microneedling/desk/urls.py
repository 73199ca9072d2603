"""The desk's routes."""

from django.urls import path

from microneedling.desk import views

app_name = "desk"
urlpatterns = [
    path("", views.home, name="home"),
    path("skin-reports/", views.skin_reports, name="skin_reports"),
    path("skin-reports/<int:report_id>/", views.skin_report_detail, name="skin_report"),
    path("skin-reports/<int:report_id>/photo/", views.skin_report_photo, name="skin_report_photo"),
]
