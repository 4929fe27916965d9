"""The Celery application: configured from Django settings (`CELERY_*`)."""

from __future__ import annotations

import os

from celery import Celery

from studio import kombu_fixes

# A worker must survive a Redis restart: see studio/kombu_fixes.py for the root cause.
kombu_fixes.apply()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
