"""Routes of the FHIR R4 API."""

from django.urls import path, re_path

from microneedling.interop.fhir import bulk, views

app_name = "fhir"
urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("Patient/<str:resource_id>/$everything", views.everything, name="everything"),
    path("$export", bulk.export_kickoff, name="export"),
    path("$export-status/<int:job_id>", bulk.export_status, name="export_status"),
    path("$export-file/<int:job_id>/<str:type_name>.ndjson", bulk.export_file, name="export_file"),
    path("<str:type_name>", views.type_endpoint, name="type"),
    path("<str:type_name>/<str:resource_id>", views.instance_endpoint, name="instance"),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="unknown"),
]
