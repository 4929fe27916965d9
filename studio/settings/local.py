"""`make run`: everything embedded, the sandbox on, debug on."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-only-insecure-secret-key-change-me")
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
# Password-reset emails are printed in the terminal running `make run`, unless EMAIL_URL is set.
if not env("EMAIL_URL", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Static files are served straight from static/ by WhiteNoise (no collectstatic needed).
STATIC_ROOT = None
