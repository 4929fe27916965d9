from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "studio"
    verbose_name = "Studio"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401  (registers the settings checks)
        from .ratelimit import remember_sign_in

        def remember(sender: object, request: object, user: object, **kwargs: object) -> None:
            remember_sign_in(request, user.get_username())  # type: ignore[arg-type, attr-defined]

        user_logged_in.connect(remember, weak=False, dispatch_uid="studio.remember_sign_in")
