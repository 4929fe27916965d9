from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from jobs import views as job_views
from jobs import webhooks

from . import views
from .ratelimit import throttle_logins, throttle_password_resets

# The admin's own login form is rate limited like the studio's.
admin.site.login = throttle_logins(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("accounts/login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password change (signed in) and reset by email (console backend in development).
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "accounts/password/reset/",
        throttle_password_resets(
            auth_views.PasswordResetView.as_view(
                email_template_name="registration/password_reset_email.txt",
                subject_template_name="registration/password_reset_subject.txt",
            )
        ),
        name="password_reset",
    ),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("events/", views.events, name="events"),
    path("teams/switch/", views.switch_team, name="switch_team"),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    path("webhooks/<slug:provider>/<str:token>/", webhooks.receive, name="webhook"),
    path("public/assets/<str:token>/<str:name>", job_views.asset_public, name="asset_public"),
    path("team/", views.team_settings, name="team_settings"),
    path("team/members/", views.team_members, name="team_members"),
    path("team/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("team/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("team/invites/<int:pk>/revoke/", views.invite_revoke, name="invite_revoke"),
    path("team/audit/", views.audit_log, name="audit_log"),
    path("invite/<str:token>/", views.invite_accept, name="invite"),
    path("usage/", include("usage.urls")),
    path("profiles/", include("profiles.urls")),
    path("review/", include("review.urls")),
    path("casting/", include("casting.urls")),
    path("consent/", include("consent.urls")),
    path("", include("jobs.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.insert(0, path("sandbox/", include("sandbox.urls")))
