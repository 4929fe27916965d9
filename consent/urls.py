from django.urls import path

from . import views

app_name = "consent"

urlpatterns = [
    path("", views.consent_list, name="list"),
    path("new/", views.consent_new, name="new"),
    path("settings/", views.consent_settings, name="settings"),
    path("verify/", views.verify, name="verify"),
    path("<int:pk>/", views.consent_detail, name="detail"),
    path("<int:pk>/document/", views.consent_document, name="document"),
    path("<int:pk>/revoke/", views.consent_revoke, name="revoke"),
]
