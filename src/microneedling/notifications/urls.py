"""Routes of the calendar feeds."""

from django.urls import path

from microneedling.notifications import views

app_name = "calendar"
urlpatterns = [path("<str:token>.ics", views.feed, name="feed")]
