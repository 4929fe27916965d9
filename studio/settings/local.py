"""`make run`: everything embedded, the sandbox on. DEBUG stays off unless DEBUG=1: teammates
see the studio's own 404 and 500 pages, never a traceback or the URL list."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="local-only-insecure-secret-key-change-me")
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
# Password-reset emails are printed in the terminal running `make run`, unless EMAIL_URL is set.
if not env("EMAIL_URL", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Static files are served straight from static/ by WhiteNoise, DEBUG or not: it finds them
# where they live and picks up edits (no collectstatic needed for `make run`).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = None
