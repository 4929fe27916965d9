"""Image build only (the Dockerfile's `collectstatic`): the production settings with throwaway
secrets, so static files are collected exactly as production serves them (hashed, compressed)
while the build needs no secret. Nothing built with these settings ever serves a request."""

from __future__ import annotations

import os

# Set before production reads them: production refuses to start without either.
os.environ.setdefault("SECRET_KEY", "image-build-only-not-a-secret")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "aW1hZ2UtYnVpbGQtb25seS1ub3QtYS1zZWNyZXQtISE=")
os.environ.setdefault("PUBLIC_BASE_URL", "https://image-build.invalid")

from .production import *  # noqa: F403
