"""The team shell: live events (server-sent), team switching, and the health check."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from review import live as review_live
from review import selectors as review_selectors

from .forms import TeamSettingsForm
from .http import require_membership
from .ids import parse_id, safe_next
from .live import sse_message, team_channel
from .models import Membership
from .ratelimit import SIGN_IN_PAUSED, LimiterUnavailable, login_allowance
from .selectors import SESSION_TEAM_KEY, current_membership
from .tasks import HEARTBEAT_KEY

KEEPALIVE_SECONDS = 15.0

log = logging.getLogger(__name__)


@require_GET
async def events(request: HttpRequest) -> HttpResponse:
    """Stream the team's live events as server-sent events (htmx's SSE extension listens).

    Each message names a job (its card) or an output under review (see `review.live`); the
    HTML is rendered here, for this user, from the database, so the stream never carries
    anything the user could not load as a page.
    """
    user = await request.auser()
    membership = await sync_to_async(current_membership)(request)
    if membership is None:
        return HttpResponse(status=403)
    response = StreamingHttpResponse(
        _stream(user, membership.team_id), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


async def _stream(user: Any, team_id: int) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
    pubsub = client.pubsub()
    try:
        async for chunk in _relay(pubsub, user, team_id):
            yield chunk
    except redis.RedisError:
        # Redis went away: end the stream; the browser reconnects after `retry` and the page
        # re-reads the database then. Nothing to log per tab beyond a line.
        log.info("live stream for team %s ended: Redis unavailable", team_id)
    finally:
        with contextlib.suppress(redis.RedisError, OSError):
            await pubsub.aclose()
            await client.aclose()


async def _relay(pubsub: Any, user: Any, team_id: int) -> AsyncIterator[str]:
    await pubsub.subscribe(team_channel(team_id))
    yield "retry: 2000\n\n"
    while True:
        message = await pubsub.get_message(
            ignore_subscribe_messages=True, timeout=KEEPALIVE_SECONDS
        )
        if message is None:
            yield ": keep-alive\n\n"
            continue
        try:
            data = json.loads(message["data"])
        except (ValueError, TypeError):
            continue
        for name, html in await sync_to_async(_messages)(user, data):
            yield sse_message(name, html)


def _messages(user: Any, data: Any) -> list[tuple[str, str]]:
    """Return the (event name, HTML) messages one published event becomes for `user`."""
    if not isinstance(data, dict):
        return []
    if data.get("event") in review_live.EVENTS:
        return review_live.messages_for(user, data)
    try:
        job_id = int(data["job_id"])
    except (ValueError, KeyError, TypeError):
        return []
    # The card as the gallery shows it to this user (review state, their star).
    job = review_selectors.gallery_card(user, job_id)
    if job is None:
        return []
    name = "job-created" if data.get("event") == "job-created" else f"job-{job_id}"
    messages = [(name, render_to_string("jobs/gallery.html#card", {"job": job}))]
    # The person who started the job hears when it is over, on whatever page they are.
    if data.get("event") == "job" and job.is_terminal and job.created_by_id == user.pk:
        messages.append(("job-done", render_to_string("jobs/_toast.html", {"job": job})))
    return messages


@require_POST
def switch_team(request: HttpRequest) -> HttpResponse:
    team_id = parse_id(request.POST.get("team"))
    mine = Membership.objects.filter(user=request.user, team_id=team_id)
    if team_id is None or not mine.exists():
        raise Http404("No such team of yours.")
    request.session[SESSION_TEAM_KEY] = team_id
    return redirect(safe_next(request, "/"))


@sensitive_post_parameters("imagepipeline_api_key", "imaginepro_api_key")
@require_http_methods(["GET", "POST"])
def team_settings(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)  # type: ignore[arg-type]
    can_edit = membership.can_manage
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("Only the team's owners change its settings.")
    form = TeamSettingsForm(request.POST or None, instance=membership.team)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Team settings saved.")
        return redirect("team_settings")
    members = membership.team.memberships.select_related("user").order_by("user__username")
    return render(
        request,
        "studio/team.html",
        {"form": form, "can_edit": can_edit, "members": members},
        status=422 if form.errors else 200,
    )


def _worker_health() -> str:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except redis.RedisError:
        return "unknown: Redis is down"
    if beat is None:
        return "error: no heartbeat yet (are the worker and beat running?)"
    age = time.time() - float(beat)
    if age > settings.WORKER_HEARTBEAT_MAX_AGE:
        return f"error: last heartbeat {age:.0f} s ago"
    return "ok"


class RateLimitedLoginView(LoginView):
    """Django's login, refusing more than LOGIN_RATE attempts per address and per username."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            allowed, retry_in = login_allowance(request)
        except LimiterUnavailable as exc:
            form = self.get_form()
            form.add_error(None, SIGN_IN_PAUSED)
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 503
            response["Retry-After"] = str(exc.retry_in)
            return response
        if not allowed:
            form = self.get_form()
            form.add_error(None, f"Too many sign-in attempts. Try again in {retry_in} s.")
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            response["Retry-After"] = str(retry_in)
            return response
        return super().post(request, *args, **kwargs)


@login_not_required
@require_GET
def livez(request: HttpRequest) -> HttpResponse:
    """Liveness of this web process alone: it answers. A container orchestrator restarts the web
    process when this fails; a worker, Redis or database outage is /healthz's business (restarting
    the web process would not fix it)."""
    return HttpResponse("ok", content_type="text/plain")


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report whether the database and Redis answer; 503 if either does not."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    checks["worker"] = _worker_health()
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
