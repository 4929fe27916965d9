"""`make run`: everything embedded, the sandbox on, debug on."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-only-insecure-secret-key-change-me")
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Static files are served straight from static/ by WhiteNoise (no collectstatic needed).
STATIC_ROOT = None
