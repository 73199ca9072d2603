"""URL routes: the admin and the JSON API (OpenAPI at /api/v1/openapi.json)."""

from django.contrib import admin
from django.urls import path

from microneedling.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
