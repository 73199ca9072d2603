"""URL routes: the public pages, the patient's pages, the admin and the JSON API (OpenAPI at
/api/v1/openapi.json)."""

from django.contrib import admin
from django.urls import include, path

from microneedling.api import api

urlpatterns = [
    path("", include("microneedling.web.urls")),
    path("my/", include("microneedling.portal.urls")),
    path("desk/", include("microneedling.desk.urls")),
    path("calendar/", include("microneedling.notifications.urls")),
    path("fhir/R4/", include("microneedling.interop.urls")),
    path("audit/", include("microneedling.audit.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
