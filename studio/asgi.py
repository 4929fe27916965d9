"""ASGI entry point. The studio runs under uvicorn so that server-sent events (the live
gallery) hold no thread per open browser tab."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

application = get_asgi_application()
