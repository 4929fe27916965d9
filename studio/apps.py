from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.urls import register_converter

        from . import checks  # noqa: F401  (registers the settings checks)
        from .ids import IdConverter

        # Every id in a path is `<id:…>`: parsed once, by the one parser, before any view runs.
        register_converter(IdConverter, "id")
