"""The auditor's routes."""

from django.urls import path

from microneedling.audit import views

app_name = "audit"
urlpatterns = [path("", views.search, name="search")]
