"""Live events: published to Redis pub/sub by any process (web or worker), streamed to
browsers as server-sent events by `studio.views.events`.

Redis pub/sub rather than an in-process queue so that several web processes and any number of
workers can publish: every open browser tab is subscribed to its team's channel.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def team_channel(team_id: int) -> str:
    return f"{settings.LIVE_CHANNEL_PREFIX}:team:{team_id}"


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)


def publish(team_id: int, event: str, **data: Any) -> None:
    """Publish now. A failure is logged, never raised: live updates are a convenience, the
    database is the truth, and pages re-read it when they reconnect."""
    message = json.dumps({"event": event, **data})
    try:
        _client().publish(team_channel(team_id), message)
    except redis.RedisError:
        log.warning("live event %s for team %s not published", event, team_id, exc_info=True)


def publish_on_commit(team_id: int, event: str, **data: Any) -> None:
    """Publish once the current transaction commits, so nobody sees a state that may roll back."""
    transaction.on_commit(lambda: publish(team_id, event, **data))


def sse_message(event: str, data: str, *, event_id: str = "") -> str:
    """Format one server-sent event; multi-line data becomes several `data:` lines."""
    lines = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\n{lines}\n"
