"""The URLs of the sandbox's own process (sandbox.wsgi): its routes, at the studio's paths."""

from django.urls import include, path

urlpatterns = [path("sandbox/", include("sandbox.urls"))]
