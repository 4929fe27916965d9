from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review and approval"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
