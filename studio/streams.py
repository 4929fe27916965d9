"""Live event streams: one Redis subscription per web process, async all the way.

Every open browser tab holds one server-sent event stream (`/events/`). An idle stream is an
asyncio queue and nothing else: no thread, no database connection, no Redis connection of its
own. The process's `Hub` holds one pattern subscription to every team channel and hands each
published event to the streams of that team.

A job event is rendered once per team, not once per stream: the card is the same for every
member except their own star, so the hub renders it (at most) twice, with and without the
star, and each stream picks its user's variant. Review events (human-paced) are rendered per
user. Rendering runs in the default thread pool and closes its database connection after.

Each message carries an `id:` (the time it was sent, in microseconds). A browser that loses
the stream reconnects with `Last-Event-ID` and first receives the cards of the team's jobs
that changed since then, so nothing missed while disconnected stays stale.

`asgi_events` serves the stream straight from the ASGI entry point: Django's middleware chain
includes synchronous middleware, which would pin a thread (and its database connection) to
every open stream for as long as it stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.template.loader import render_to_string

from .live import sse_message

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
# Events a stream may fall behind by before it is closed (the browser reconnects and resyncs).
QUEUE_LIMIT = 500
# Cards sent on reconnect at most, newest first; and how far before the last id to look.
RESYNC_LIMIT = 100
RESYNC_MARGIN = timedelta(seconds=2)

Messages = list[tuple[str, str]]


@dataclass(frozen=True)
class Message:
    """One SSE message as the team sees it: the HTML per variant of the card's per-user bits
    (whether the user starred the output, whether they may start jobs from it), and each
    member's variant."""

    name: str
    variants: dict[tuple[bool, bool], str]
    members: dict[int, tuple[bool, bool]]

    def for_user(self, user_id: int) -> str | None:
        variant = self.members.get(user_id)
        return None if variant is None else self.variants[variant]


@dataclass(eq=False)
class Listener:
    user_id: int
    team_id: int
    queue: asyncio.Queue[tuple[str, Messages] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )

    def put(self, stamp: str, messages: Messages) -> None:
        try:
            self.queue.put_nowait((stamp, messages))
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class Hub:
    """The process's one subscription to the live-event channels, and the open streams."""

    def __init__(self) -> None:
        self.teams: dict[int, set[Listener]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def join(self, user_id: int, team_id: int) -> Listener:
        listener = Listener(user_id, team_id)
        self.teams[team_id].add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return listener

    def leave(self, listener: Listener) -> None:
        listeners = self.teams.get(listener.team_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.teams[listener.team_id]

    @property
    def streams(self) -> int:
        return sum(len(listeners) for listeners in self.teams.values())

    async def _run(self) -> None:
        pattern = f"{settings.LIVE_CHANNEL_PREFIX}:team:*"
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(pattern)
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        await self._dispatch(message)
            except (redis.RedisError, OSError) as exc:
                # Events published meanwhile are lost: end every stream, so that each browser
                # reconnects (after `retry`) and resyncs from the database (Last-Event-ID).
                log.info("live events: Redis unavailable (%s); streams ended", exc)
                for listeners in list(self.teams.values()):
                    for listener in list(listeners):
                        listener.close()
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            team_id = int(channel.rsplit(":", 1)[1])
            data = json.loads(message["data"])
        except (ValueError, TypeError, IndexError):
            return
        listeners = list(self.teams.get(team_id, ()))
        if not listeners or not isinstance(data, dict):
            return
        stamp = str(time.time_ns() // 1000)
        try:
            if data.get("event") in _review_events():
                for listener in listeners:
                    messages = await in_thread(user_messages, listener.user_id, data)
                    listener.put(stamp, messages)
                return
            rendered, members = await in_thread(team_messages, team_id, data)
        except Exception:
            log.exception("live event for team %s could not be rendered", team_id)
            return
        for listener in listeners:
            if listener.user_id not in members:
                listener.close()  # no longer a member: their stream ends here
                continue
            mine = [(m.name, m.for_user(listener.user_id)) for m in rendered]
            if mine:
                listener.put(stamp, [(name, html) for name, html in mine if html is not None])


_hubs: dict[int, Hub] = {}


def hub() -> Hub:
    """Return the hub of the running event loop (one per web process)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(id(loop))
    if found is None:
        found = _hubs[id(loop)] = Hub()
    return found


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Run database work in the default thread pool (not a thread of the stream's own)."""
    return await sync_to_async(_closing(function), thread_sensitive=False)(*args)


def _closing(function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        try:
            return function(*args)
        finally:
            connections.close_all()  # this thread's: an idle stream holds no connection

    return run


def _review_events() -> tuple[str, ...]:
    from review import live as review_live

    return review_live.EVENTS


# --- rendering (in a thread) ------------------------------------------------------------------


def team_messages(team_id: int, data: dict[str, Any]) -> tuple[list[Message], set[int]]:
    """Render a job event once for the team (once per variant of the card's per-user bits,
    four at most, whatever the number of open streams), plus the "job-done" toast for the
    member who started a job that is over; return them and the member ids."""
    from review.models import Star
    from review.selectors import team_gallery_card

    from .models import Membership, Role

    roles = dict(Membership.objects.filter(team_id=team_id).values_list("user_id", "role"))
    members = set(roles)
    if data.get("event") == "budget":
        return budget_messages(team_id, members), members
    try:
        job_id = int(data["job_id"])
    except (ValueError, KeyError, TypeError):
        return [], members
    job = team_gallery_card(team_id, job_id)
    if job is None:
        return [], members
    output = getattr(job, "output", None)
    starred_by: set[int] = set()
    if output is not None:
        starred_by = set(Star.objects.filter(output=output).values_list("user_id", flat=True))
    submitters = (Role.OWNER, Role.EDITOR)
    variant_of = {
        user_id: (user_id in starred_by, role in submitters) for user_id, role in roles.items()
    }
    variants = {}
    for starred, can_submit in sorted(set(variant_of.values())):
        job.starred, job.user_can_submit = starred, can_submit
        variants[(starred, can_submit)] = render_to_string("jobs/gallery.html#card", {"job": job})
    name = "job-created" if data.get("event") == "job-created" else f"job-{job_id}"
    messages = [Message(name, variants, variant_of)]
    # The person who started the job hears when it is over, on whatever page they are.
    creator = job.created_by_id
    finished = data.get("event") == "job" and job.is_terminal and not data.get("preview")
    if finished and creator in variant_of:
        toast = render_to_string("jobs/_toast.html", {"job": job})
        variant = variant_of[creator]
        messages.append(Message("job-done", {variant: toast}, {creator: variant}))
    return messages, members


def budget_messages(team_id: int, members: set[int]) -> list[Message]:
    """The team's budget warning, whose spend crossed a threshold: the same for every member."""
    from usage.services import budget_state

    from .models import Team

    team = Team.objects.filter(pk=team_id).first()
    state = budget_state(team, fresh=True) if team is not None else None
    if state is None or state.level == "ok":
        return []
    html = render_to_string("usage/_budget_toast.html", {"budget": state})
    return [Message("budget", {(False, False): html}, dict.fromkeys(members, (False, False)))]


def user_messages(user_id: int, data: dict[str, Any]) -> Messages:
    """Render a review event for one user (see `review.live`)."""
    from django.contrib.auth import get_user_model

    from review import live as review_live

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return []
    return review_live.messages_for(user, data)


def resync_messages(user_id: int, team_id: int, last_event_id: str) -> Messages:
    """Return the cards of the team's jobs changed since `last_event_id`, newest last."""
    from django.contrib.auth import get_user_model

    from review.selectors import gallery_jobs

    try:
        since = datetime.fromtimestamp(int(last_event_id) / 1e6, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return []
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return []
    jobs = gallery_jobs(user=user, team_id=team_id).filter(updated_at__gte=since - RESYNC_MARGIN)
    return [
        (f"job-{job.pk}", render_to_string("jobs/gallery.html#card", {"job": job}))
        for job in reversed(list(jobs[:RESYNC_LIMIT]))
    ]


def authenticate(session_key: str) -> tuple[int | None, int | None]:
    """Return (user id, current team id) for a session cookie, like the middleware would."""
    from django.contrib.auth import get_user

    from .selectors import SESSION_TEAM_KEY, membership_for

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    if not user.is_authenticated:
        return None, None
    membership = membership_for(user, request.session.get(SESSION_TEAM_KEY))
    return user.pk, membership.team_id if membership else None


# --- the stream -------------------------------------------------------------------------------


async def stream(user_id: int, team_id: int, last_event_id: str = "") -> AsyncIterator[str]:
    """The SSE body for one open tab: a resync when reconnecting, then the team's events."""
    listener = hub().join(user_id, team_id)
    try:
        yield "retry: 2000\n\n"
        if last_event_id:
            for name, html in await in_thread(resync_messages, user_id, team_id, last_event_id):
                yield sse_message(name, html)
        while True:
            try:
                item = await asyncio.wait_for(listener.queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            stamp, messages = item
            for name, html in messages:
                yield sse_message(name, html, event_id=stamp)
    finally:
        hub().leave(listener)


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def asgi_events(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve `/events/` without Django's (partly synchronous) middleware chain."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if scope["method"] not in ("GET", "HEAD"):
        await _plain(send, 405, b"Method not allowed.", [(b"allow", b"GET")])
        return
    if not host_allowed(headers.get("host", "")):
        await _plain(send, 400, b"Bad request.")
        return
    session_key = ""
    with contextlib.suppress(CookieError, KeyError):
        session_key = SimpleCookie(headers.get("cookie", ""))[settings.SESSION_COOKIE_NAME].value
    user_id, team_id = (None, None)
    if session_key:
        user_id, team_id = await in_thread(authenticate, session_key)
    if user_id is None:
        location = f"{resolve_url(settings.LOGIN_URL)}?next={quote(scope['path'])}".encode()
        await _plain(send, 302, b"", [(b"location", location)])
        return
    if team_id is None:
        await _plain(send, 403, b"Not a member of any team.")
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return

    async def pump() -> None:
        async for chunk in stream(user_id, team_id, headers.get("last-event-id", "")):
            await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(disconnected())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def host_allowed(host: str) -> bool:
    from django.http.request import split_domain_port, validate_host

    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


async def _plain(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})
