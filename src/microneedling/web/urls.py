"""Public page routes."""

from django.urls import path

from microneedling.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("treatment/", views.treatment, name="treatment"),
    path("locations/", views.locations, name="locations"),
    path("locations/<slug:slug>/", views.location_detail, name="location"),
]
