"""ASGI entry point. The studio runs under uvicorn so that server-sent events (the live
gallery) hold no thread per open browser tab: `/events/` is answered here by
`studio.streams.asgi_events`, before Django's middleware chain (whose synchronous parts would
pin a thread to every open stream), and provider webhooks by `jobs.webhooks.asgi_receive`
(a call per job of every batch, which needs no session, sign-in or CSRF token); everything
else goes to Django."""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings.local")

django_application = get_asgi_application()

from jobs import webhooks  # noqa: E402 - needs the apps loaded first
from studio.streams import asgi_events  # noqa: E402

EVENTS_PATH = "/events/"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        if scope["path"] == EVENTS_PATH:
            await asgi_events(scope, receive, send)
            return
        if match := webhooks.PATH.match(scope["path"]):
            await webhooks.asgi_receive(scope, receive, send, match)
            return
    await django_application(scope, receive, send)
