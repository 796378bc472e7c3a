"""django-helpdesk's URLs (its notification mails link to tickets)."""
from django.urls import include, path

urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
