from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.conf import settings

        from . import (
            checks,  # noqa: F401  (registers the settings checks)
            observability,
        )

        observability.connect_celery_signals()
        observability.init_sentry(
            settings.SENTRY_DSN,
            environment=settings.SENTRY_ENVIRONMENT,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
