from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.conf import settings
        from django.contrib.auth.signals import user_logged_in
        from django.urls import register_converter

        from . import (
            checks,  # noqa: F401  (registers the settings checks)
            observability,
        )
        from .ids import IdConverter
        from .ratelimit import remember_sign_in

        # Every id in a path is `<id:…>`: parsed once, by the one parser, before any view runs.
        register_converter(IdConverter, "id")

        def remember(sender: object, request: object, user: object, **kwargs: object) -> None:
            remember_sign_in(request, user.get_username())  # type: ignore[arg-type, attr-defined]

        user_logged_in.connect(remember, weak=False, dispatch_uid="studio.remember_sign_in")
        observability.connect_celery_signals()
        observability.init_sentry(
            settings.SENTRY_DSN,
            environment=settings.SENTRY_ENVIRONMENT,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
